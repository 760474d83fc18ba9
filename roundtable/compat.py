"""Server compatibility: reshaping messages for strict chat templates, classifying errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MODES = ("auto", "standard", "no-system", "alternating")
# In auto mode a template error moves one step along this ladder.
LADDER = ("standard", "no-system", "alternating")

_TEMPLATE_ERRORS = re.compile(
    r"roles must alternate|system role not supported|only user and assistant roles|"
    r"jinja|template[ _]error|chat template",
    re.IGNORECASE,
)
_CONTEXT_ERRORS = re.compile(
    r"context_length_exceeded|exceed_context_size|maximum context length|context length|"
    r"context window|exceeds? the available context|too many tokens",
    re.IGNORECASE,
)
_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)|n_ctx[\"': =]+(\d+)", re.IGNORECASE)


def fold_system(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn system messages into text at the top of the conversation, in a user message."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
        return rest
    return [{"role": "user", "content": system}, *rest]


def alternate(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold system text, merge same-role neighbours, start and end with a user message."""
    merged: list[dict[str, Any]] = []
    for m in fold_system(messages):
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1] = {**merged[-1], "content": f"{merged[-1]['content']}\n\n{m['content']}"}
        else:
            merged.append(dict(m))
    if not merged or merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": "(The conversation so far follows.)"})
    if merged[-1]["role"] != "user":
        merged.append({"role": "user", "content": "Please continue."})
    return merged


def adapt(messages: Sequence[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The messages as a server in `mode` accepts them (auto behaves as standard)."""
    if mode == "no-system":
        return fold_system(messages)
    if mode == "alternating":
        return alternate(messages)
    return [dict(m) for m in messages]


def stricter(mode: str) -> str | None:
    """The next mode to try after a template error in auto mode, or None at the end."""
    index = LADDER.index(mode) if mode in LADDER else 0
    return LADDER[index + 1] if index + 1 < len(LADDER) else None


def is_template_error(status: int | None, message: str) -> bool:
    """True for a chat-template rejection (vLLM 400, TGI 422, llama.cpp 500)."""
    return status in (400, 422, 500) and bool(_TEMPLATE_ERRORS.search(message))


def is_context_error(status: int | None, message: str) -> bool:
    """True when the prompt plus max_tokens did not fit the model's context."""
    return status in (400, 413, 422) and bool(_CONTEXT_ERRORS.search(message))


def context_limit(message: str) -> int | None:
    """The context size a context error names, if it names one."""
    match = _CONTEXT_LIMIT.search(message)
    if not match:
        return None
    return int(next(g for g in match.groups() if g))
