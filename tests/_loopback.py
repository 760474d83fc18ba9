"""A tiny scripted HTTP server on 127.0.0.1, for answers the dummy server does not give."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path) -> (status, JSON body or text, extra headers), or a list of them: one per
# request, the last one repeated.
Routes = Mapping[tuple[str, str], Any]


@contextmanager
def serve(routes: Routes) -> Iterator[tuple[str, list[tuple[str, str, Any]]]]:
    """Yield (root URL, requests seen); unknown paths get a JSON 404."""
    seen: list[tuple[str, str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen.append((method, self.path, json.loads(raw) if raw else None))
            answer = routes.get((method, self.path), (404, {"detail": "Not Found"}, {}))
            if isinstance(answer, list):
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            status, body, headers = answer
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def sse(*deltas: str, finish: str = "stop", usage: dict[str, int] | None = None) -> str:
    """A chat stream as servers send it: deltas, a finish chunk, maybe usage, then [DONE]."""
    chunks = [{"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
              for d in deltas]  # fmt: skip
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        chunks.append({"choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
