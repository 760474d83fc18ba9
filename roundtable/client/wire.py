"""The HTTP wire format of OpenAI-compatible servers: SSE lines and events, chunked bodies,
error bodies, token counts."""

from __future__ import annotations

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


class Lines:
    """The lines of a byte stream as UTF-8 text, fed as it arrives (lines end in \\n, \\r\\n
    or \\r, as SSE allows); a line split over chunks, a multi-byte character included,
    comes out whole."""

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending(self) -> bool:
        """Whether a line has begun and not ended."""
        return bool(self._pending)

    def feed(self, chunk: bytes) -> list[str]:
        """The lines this chunk completes."""
        # Cheaper per chunk than a text decoder and a line decoder on every chunk: a
        # streamed reply is one small chunk per token.
        data = self._pending + chunk if self._pending else chunk
        held = data.endswith(b"\r")  # the next chunk may start with its \n
        if held:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._pending = data.split(b"\n")
        if held:
            self._pending += b"\r"
        return [line.decode("utf-8", "replace") for line in lines]

    def close(self) -> list[str]:
        """The last line, if the stream ended without ending it."""
        pending, self._pending = self._pending, b""
        return [pending.rstrip(b"\r").decode("utf-8", "replace")] if pending else []


class Events:
    """The data of each server-sent event, fed line by line (data lines joined; comments
    and other fields skipped)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    @property
    def pending(self) -> bool:
        """Whether an event has begun (a data line) and not ended (a blank line)."""
        return bool(self._data)

    def line(self, line: str) -> str | None:
        """The event this line ends, if it ends one."""
        if not line:
            if self._data:
                event, self._data = "\n".join(self._data), []
                return event
        elif line.startswith("data:"):
            self._data.append(line[5:].lstrip(" "))
        # other fields (event:, id:, retry:) and ':' comments carry nothing we use
        return None

    def close(self) -> str | None:
        """An event the stream ended without a blank line after."""
        return self.line("")


class Body:
    """An HTTP/1.1 response body decoded as its bytes arrive: chunked transfer coding,
    a Content-Length, or everything up to the close (RFC 9112, sections 6 and 7.1).

    Bytes that come after the body's end are kept in `extra` (a server that sends them
    leaves the connection in no state to reuse). A malformed chunk raises ValueError."""

    MAX_LINE = 4096  # a chunk-size or trailer line longer than this is not HTTP

    def __init__(self, chunked: bool, length: int | None) -> None:
        self.chunked, self.length = chunked, length
        self.done = length == 0 and not chunked
        self._buf = b""
        self._left = 0  # chunked: data bytes left in this chunk; -1: its CRLF is next
        self._trailer = False  # chunked: past the last chunk, reading trailer lines
        self.extra = b""

    def feed(self, data: bytes) -> bytes:
        """The body bytes in `data` (what follows the body's end is not returned)."""
        if not self.chunked:
            if self.length is None:
                return data
            if len(data) > self.length:
                data, self.extra = data[: self.length], self.extra + data[self.length :]
            self.length -= len(data)
            self.done = self.length == 0
            return data
        # An index into the bytes rather than slicing what is left after every chunk:
        # a read of a stream holds a chunk per token.
        buf, out, at = self._buf + data if self._buf else data, [], 0
        while not self.done:
            if self._left > 0:
                piece = buf[at : at + self._left]
                out.append(piece)
                at += len(piece)
                self._left -= len(piece)
                if self._left:
                    break
                self._left = -1
            if self._left < 0:
                if len(buf) - at < 2:
                    break
                if buf[at : at + 2] != b"\r\n":
                    raise ValueError("a chunk does not end with CRLF")
                at, self._left = at + 2, 0
            end = buf.find(b"\n", at)
            if end < 0:
                if len(buf) - at > self.MAX_LINE:
                    raise ValueError("a chunk-size line without an end")
                break
            line, at = buf[at:end].rstrip(b"\r"), end + 1
            if self._trailer:
                self.done = not line
            elif (size := int(line.split(b";", 1)[0].strip() or b"x", 16)) < 0:
                raise ValueError("a negative chunk size")
            elif size == 0:
                self._trailer = True
            else:
                self._left = size
        buf = buf[at:]
        if self.done:
            self.extra, buf = self.extra + buf, b""
        self._buf = buf
        return b"".join(out)


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
