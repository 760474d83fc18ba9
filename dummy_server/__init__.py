"""An offline, OpenAI-compatible chat server that answers with Markov-chain text."""

from __future__ import annotations

from .app import QUIRKS, ServerConfig, create_app
from .server import BackgroundServer

__all__ = ["QUIRKS", "BackgroundServer", "ServerConfig", "create_app"]
