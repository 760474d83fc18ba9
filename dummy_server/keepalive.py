"""HTTP/1.1 with persistent connections for the dummy server, as vLLM (uvicorn) and
llama.cpp serve: werkzeug's development handler closes the connection after every answer,
so every request a client made cost it a new TCP connection (and a benchmark measured that).

A request's body is read whole before the app runs, so the next request on the connection
starts where it should whatever the app read. Answers with a Content-Length are sent as
they are; streamed answers (SSE) in chunked transfer encoding, one write per piece. What
this handler does not take on (a chunked or oversized request body, `Connection: close`,
HTTP/1.0) goes to werkzeug's own handler, which answers and closes.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

IDLE_TIMEOUT_S = 30.0  # longer than clients keep an idle connection (httpx: 5 s)


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, keeping the connection open between requests."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # an idle connection is closed after this long
    max_body = 1024 * 1024  # larger bodies go to werkzeug's handler (its 413, then close)

    def setup(self) -> None:
        """Register the connection, so the server can close it when it stops."""
        super().setup()
        # Small answers go out at once: with a kept connection, Nagle's algorithm would hold
        # a write back until the previous one is acknowledged (40 ms with delayed ACKs).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        open_connections(self.server).add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        open_connections(self.server).discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        """Answer one request; the connection stays open unless the client asked otherwise."""
        headers = self.headers
        length = headers.get("Content-Length", "0").strip() or "0"
        plain = (
            self.request_version == "HTTP/1.1"
            and headers.get("Connection", "").lower() != "close"
            and "Transfer-Encoding" not in headers
            and "Expect" not in headers
            and length.isdigit()
            and int(length) <= self.max_body
        )
        if not plain:
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(int(length))
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        answer: dict[str, Any] = {}

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc: Any = None
        ) -> Callable[[bytes], None]:
            answer["status"], answer["headers"] = status, response_headers
            return self._unbuffered_write

        result: Iterable[bytes] = self.server.app(environ, start_response)
        try:
            self._send(answer["status"], answer["headers"], result)
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client went away mid-answer
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def log_error(self, format: str, *args: Any) -> None:
        """Log an error, but not an idle connection timing out (that is how it ends)."""
        if not format.startswith("Request timed out"):
            super().log_error(format, *args)

    def _unbuffered_write(self, data: bytes) -> None:
        raise NotImplementedError("the dummy server's app returns its body; it never writes")

    def _send(self, status: str, headers: list[tuple[str, str]], result: Iterable[bytes]) -> None:
        code, _, reason = status.partition(" ")
        names = {k.lower() for k, _ in headers}
        self.send_response(int(code), reason)
        for key, value in headers:
            self.send_header(key, value)
        if "content-length" in names or self.command == "HEAD":
            # The head and the whole body in one write.
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.extend(data for data in result if data)
            self.flush_headers()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for data in result:
            if data:
                # One write per piece: the client reads each SSE event in one go.
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")


def open_connections(server: Any) -> set[socket.socket]:
    """The connections a server's handlers hold open now."""
    with _LOCK:
        found: set[socket.socket] | None = getattr(server, "_keepalive_connections", None)
        if found is None:
            found = set()
            server._keepalive_connections = found
        return found


def close_connections(server: Any) -> None:
    """Shut every open connection (idle ones wait for a next request that will not come)."""
    for conn in list(open_connections(server)):
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the client


_LOCK = threading.Lock()
