"""The HTTP wire format of OpenAI-compatible servers: SSE events, error bodies, token counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def token_count(data: Any) -> int | None:
    """The count in a tokenizer endpoint's answer ({"count"} or {"tokens": [...]})."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("count"), int):
        return int(data["count"])
    if isinstance(data.get("tokens"), list):
        return len(data["tokens"])
    return None


def sse_events(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event (data lines joined; comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        # other fields (event:, id:, retry:) and ':' comments carry nothing we use
    if data:
        yield "\n".join(data)


def body_message(response: Any) -> str:
    """The error message in a failed response's body (OpenAI, vLLM, TGI or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:300] or f"HTTP {response.status_code}"
    return message_of(body) or f"HTTP {response.status_code}"


def message_of(body: Any) -> str | None:
    """The message of an error body, in any of the shapes servers use."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            text = str(inner["message"])[:300]
            if isinstance(inner.get("n_ctx"), int) and "n_ctx" not in text:
                # llama.cpp names its context size beside the message, not in it.
                text += f" (n_ctx {inner['n_ctx']})"
            return text
        if isinstance(inner, str):
            return inner[:300]
        for key in ("message", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:300]
    if isinstance(body, str) and body:
        return body[:300]
    return None
