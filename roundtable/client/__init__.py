"""The model client: one HTTP stack per endpoint (transport, classification, retries, server
facts, message layouts) behind ChatClient."""

from __future__ import annotations

from .chat import ChatClient, Completion, estimate_tokens
from .compat import MODES
from .retry import ContextOverflow
from .server import ServerFacts, SharedFacts
from .transport import UNWATCHED_GATHER_S, IncompleteStream

__all__ = [
    "MODES", "ChatClient", "Completion", "ContextOverflow", "IncompleteStream",
    "UNWATCHED_GATHER_S", "ServerFacts", "SharedFacts", "estimate_tokens",
]  # fmt: skip
