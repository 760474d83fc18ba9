"""Message layouts for strict chat templates (the `compat` modes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MODES = ("auto", "standard", "no-system", "alternating")
# In auto mode a template error moves one step along this ladder.
LADDER = ("standard", "no-system", "alternating")


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
