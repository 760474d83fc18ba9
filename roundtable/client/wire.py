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


def byte_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream as UTF-8 text (lines end in \\n, \\r\\n or \\r, as SSE
    allows); a line split over chunks, a multi-byte character included, comes out whole."""
    # Cheaper per chunk than httpx's iter_lines (a text decoder and a line decoder on every
    # chunk): a streamed reply is one small chunk per token.
    pending = b""
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        held = data.endswith(b"\r")  # the next chunk may start with its \n
        if held:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, pending = data.split(b"\n")
        if held:
            pending += b"\r"
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")


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
