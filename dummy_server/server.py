"""Run the dummy server on a loopback port in a background thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import ServerConfig, create_app
from .keepalive import KeepAliveHandler, close_connections


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _QuietKeepAlive(KeepAliveHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class BackgroundServer:
    """A threaded dummy server; use as a context manager or call close()."""

    def __init__(
        self,
        config: ServerConfig | Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        quiet: bool = True,
        record: bool = False,
        keep_alive: bool = True,
    ) -> None:
        """`record`: keep every chat request's JSON body in `received` (off by default: a
        long offline run would hold all its prompts in memory). `keep_alive`: HTTP/1.1
        persistent connections, as real servers keep them (False: werkzeug's handler,
        which closes the connection after every answer)."""
        handler: type[WSGIRequestHandler]
        if keep_alive:
            handler = _QuietKeepAlive if quiet else KeepAliveHandler
        else:
            handler = _QuietHandler if quiet else WSGIRequestHandler
        self.received: list[dict[str, Any]] = []
        app = create_app(config, self.received if record else None)
        # Bind the socket ourselves: werkzeug calls sys.exit() when a bind fails,
        # and callers need an OSError they can turn into a clean message.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            self._server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=handler, fd=sock.fileno()
            )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.host = host
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            # A short poll interval makes close() quick (tests start many servers).
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dummy-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server root (where /tokenize and /health live)."""
        return f"http://{self.host}:{self.port}"

    def wait(self) -> None:
        """Block until the server stops (or the caller is interrupted)."""
        self._thread.join()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        close_connections(self._server)  # idle kept-alive connections too
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
