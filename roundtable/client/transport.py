"""HTTP to one endpoint: kept-alive connections, and one family of exceptions for every
failure."""

from __future__ import annotations

import base64
import http.client
import json
import select
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__
from .pump import READ_SIZE, pump
from .wire import Body, Events, Lines, message_of

PROBE_TIMEOUT_S = 10.0  # tokenizer and server-info requests: small answers, or none
UNWATCHED_GATHER_S = 0.05  # the pump's tick: a study's streams are read together this often


_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The TLS context every connection shares, made once (reading the CA store costs about
    20 ms of CPU): httpx's default, so certifi's roots and SSL_CERT_FILE/SSL_CERT_DIR."""
    with _TLS_LOCK:  # the threads of a study start together: one makes it, the rest wait
        if not _TLS:
            try:  # openai 3.x transports over httpx2, earlier releases over httpx
                import httpx2 as httpx
            except ImportError:  # pragma: no cover - depends on the installed openai
                import httpx  # type: ignore[no-redef]
            _TLS.append(httpx.create_ssl_context())
        return _TLS[0]


class TransportError(Exception):
    """An exchange with the server that gave no usable answer (the one family)."""


class StatusError(TransportError):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.headers = status, message, headers


class ConnectionFailure(TransportError):
    """No usable HTTP answer; `kind` is "connect", "timeout", "tls" or "garbled"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class IncompleteStream(TransportError):
    """A stream ended without a finish_reason (dropped, cut, or empty)."""

    def __init__(self, partial: str) -> None:
        super().__init__("the stream ended before the reply was finished")
        self.partial = partial
        self.requests = 1  # set by the retry loop: HTTP requests this ask took


@dataclass(frozen=True)
class Reply:
    """A chat answer as it came off the wire."""

    text: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    first_token_at: float | None  # time.perf_counter() when the first text arrived


def _failure(exc: BaseException) -> ConnectionFailure:
    """Name a transport-level failure (no usable HTTP answer) by what it is."""
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return ConnectionFailure("connect", "the connection was closed")  # not the handshake
    if isinstance(exc, ssl.SSLError):
        return ConnectionFailure("tls", str(exc))
    if isinstance(exc, TimeoutError):
        return ConnectionFailure("timeout", "no answer within the timeout")
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return ConnectionFailure("connect", "the server closed the connection mid-answer")
    if isinstance(exc, (http.client.HTTPException, ValueError)):
        return ConnectionFailure("garbled", f"not an HTTP answer ({type(exc).__name__})")
    if isinstance(exc, OSError) and exc.errno is None and str(exc):
        return ConnectionFailure("connect", str(exc)[:200])  # e.g. a proxy refused the tunnel
    return ConnectionFailure("connect", type(exc).__name__)


@contextmanager
def _one_family() -> Iterator[None]:
    """Turn the standard library's network and parsing exceptions into ours."""
    try:
        yield
    except TransportError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _failure(exc) from None


def _status_error(response: http.client.HTTPResponse) -> StatusError:
    """The error an HTTP error answer carries, its body read."""
    raw = response.read()
    try:
        message = message_of(json.loads(raw))
    except ValueError:
        message = raw.decode("utf-8", "replace")[:300]
    headers = dict(response.headers.items())
    return StatusError(response.status, message or f"HTTP {response.status}", headers)


def _proxy(scheme: str, host: str) -> tuple[str, int, dict[str, str]] | str | None:
    """The HTTP proxy the environment names for this host (HTTP(S)_PROXY, NO_PROXY), as
    (host, port, headers); None for a direct connection; a string: why it cannot be used."""
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not url or bypass(host, proxies):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "https"):
        return f"the proxy in the environment is {parts.scheme}://, and only HTTP proxies work"
    try:
        port = parts.port or 80
    except ValueError:
        return "the proxy URL in the environment has no valid port"
    headers = {}
    if parts.username:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    return parts.hostname or "", port, headers


def _dropped(sock: Any) -> bool:
    """Did the server close (or write to) a kept-alive connection while it was idle? Then it
    must not carry the next request."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Stream:
    """A streamed chat reply as its bytes come: the text, the end, the usage."""

    def __init__(self, on_text: Callable[[str], bool | None] | None) -> None:
        self.on_text = on_text
        self.lines, self.events = Lines(), Events()
        self.parts: list[str] = []
        self.pending: list[str] = []  # deltas not yet given to on_text
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.first: float | None = None
        self.stopped = False  # on_text asked to stop

    def take(self, data: bytes) -> None:
        """Read the events these bytes complete."""
        for line in self.lines.feed(data):
            event = self.events.line(line)
            if event is not None:
                self._event(event)

    def end(self) -> None:
        """The body ended: read a last event not followed by a blank line."""
        for line in self.lines.close():
            self.events.line(line)
        event = self.events.close()
        if event is not None:
            self._event(event)
        self.deliver()

    def deliver(self) -> bool:
        """Give on_text the deltas that came; False once it asked to stop."""
        if self.pending and not self.stopped:
            text = "".join(self.pending)
            self.pending.clear()
            self.stopped = bool(self.on_text and self.on_text(text) is False)
        return not self.stopped

    def _event(self, event: str) -> None:
        if event == "[DONE]":
            return  # read on to the end so the connection can be reused
        chunk = json.loads(event)
        if not isinstance(chunk, dict) or "error" in chunk:
            raise IncompleteStream("".join(self.parts))  # an error event mid-stream
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = (choice.get("delta") or {}).get("content")
            if delta and isinstance(delta, str):
                if self.first is None:
                    self.first = time.perf_counter()
                self.parts.append(delta)
                self.pending.append(delta)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def reply(self) -> Reply:
        """The reply as it came (IncompleteStream if it never said it was finished)."""
        text = "".join(self.parts)
        finish = "client_stop" if self.stopped else self.finish
        if finish is None:
            raise IncompleteStream(text)
        return Reply(text, finish, self.usage, self.first)


class Transport:
    """Requests to one OpenAI-compatible server over kept-alive HTTP/1.1 connections (one per
    thread, so the threads of a study never wait for each other's).

    Standard-library http.client, not httpx: a streamed reply is one small chunk per token,
    and httpx's layers (httpcore, h11) cost several times more CPU per chunk and per
    request than all of roundtable's own work per turn (bench/study.py, README "Studies")."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = (
            self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        )
        parts = urlsplit(self.base_url)
        self._scheme = parts.scheme.lower()
        self._host = parts.hostname or ""
        try:
            self._port = parts.port or (443 if self._scheme == "https" else 80)
        except ValueError:
            self._port = 0  # not a port: every request fails as "connect", naming it
        self._path = parts.path
        self._root_path = urlsplit(self.root_url).path
        self._timeout = timeout
        auth = f"Bearer {api_key}"
        if parts.username or parts.password:  # credentials in the URL: HTTP basic auth
            login = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(login.encode()).decode()
        self._headers = {
            "Authorization": auth,
            "User-Agent": f"roundtable/{__version__}",
            "Accept": "application/json",
        }
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}
        via = _proxy(self._scheme, self._host)
        self._via = via if isinstance(via, tuple) else None
        self._via_error = via if isinstance(via, str) else None
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release connections (every thread's)."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def list_models(self) -> list[dict[str, Any]]:
        """The server's /models listing, each entry with every field it sent."""
        with _one_family():
            listing = self._json("GET", self._path + "/models", None, self._timeout)
            entries = listing.get("data") if isinstance(listing, dict) else None
            if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
            ):
                raise ConnectionFailure("garbled", "not a model listing")
            return entries

    def chat(self, body: dict[str, Any]) -> Reply:
        """One chat request answered in one piece."""
        with _one_family():
            data = self._json("POST", self._path + "/chat/completions", body, self._timeout)
        try:
            choices = data.get("choices") or ()
            choice = choices[0] if choices else {}
            text = (choice.get("message") or {}).get("content") or ""
            usage = data.get("usage") or None
            finish = choice.get("finish_reason") or "unknown"
            if not isinstance(text, str) or not isinstance(usage, (dict, type(None))):
                raise TypeError(type(text).__name__)
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            raise ConnectionFailure("garbled", "no choices in the answer") from exc
        return Reply(text, finish, usage, time.perf_counter() if text else None)

    def stream_chat(
        self,
        body: dict[str, Any],
        on_text: Callable[[str], bool | None] | None,
        gather: float = 0.0,
    ) -> Reply:
        """One streamed chat request; on_text gets the text of each read (a delta, or the
        deltas that came together) and may return False to stop.

        `gather` (seconds; for streams nobody watches): the reply is read by the pump
        (pump.py), which reads every such stream once per `gather`, so on_text gets what
        came meanwhile; the reply's end is seen up to `gather` late."""
        with _one_family():
            connection, response = self._send(
                "POST", self._path + "/chat/completions", body, self._timeout, stream=True
            )
        if response.status >= 400:
            with _one_family(), self._released(connection, response):
                raise _status_error(response)
        stream = _Stream(on_text)
        try:
            with self._released(connection, response):  # closed unless read to the end
                if gather and connection.sock is not None and not response.will_close:
                    self._pumped(connection.sock, response, stream, gather)
                else:
                    while not stream.stopped and (data := response.read1(READ_SIZE)):
                        stream.take(data)
                        stream.deliver()
                if not stream.stopped:
                    stream.end()
        except (OSError, http.client.HTTPException, ValueError, AttributeError, TypeError) as exc:
            # A cut connection or a garbled event after the stream started: never
            # retried blindly; the caller starts the turn again.
            raise IncompleteStream("".join(stream.parts)) from exc
        return stream.reply()

    def _pumped(
        self, sock: Any, response: http.client.HTTPResponse, stream: _Stream, tick: float
    ) -> None:
        """Read a streamed body in the pump; the response is closed if it was read whole."""
        coded = Body(bool(response.chunked), response.length)
        sock.setblocking(False)
        early = b""
        try:  # what came with the headers
            early = response.fp.read1(READ_SIZE) or b""
            while isinstance(sock, ssl.SSLSocket) and sock.pending():
                early += sock.recv(READ_SIZE)  # decrypted already: the selector cannot see it
        except (BlockingIOError, ssl.SSLWantReadError):
            pass

        def take(data: bytes) -> bool:
            if not data:
                if coded.length is not None or coded.chunked:
                    raise ConnectionResetError("the server closed the stream")
                coded.done = True
            stream.take(coded.feed(data))
            return stream.deliver() and not coded.done

        if not coded.done and (not early or take(early)):
            pump(tick).run(sock, take, self._timeout)
        if coded.done:
            response.close()  # read to its end: the connection can carry the next request

    def post_root(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON to a path at the server's root (tokenizers live outside /v1)."""
        with _one_family():
            return self._json("POST", self._root_path + path, body, PROBE_TIMEOUT_S)

    def get_root(self, path: str) -> Any:
        """GET JSON from a path at the server's root."""
        with _one_family():
            return self._json("GET", self._root_path + path, None, PROBE_TIMEOUT_S)

    def _json(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        """One request whose answer is JSON (not JSON: a ValueError, "garbled")."""
        connection, response = self._send(method, path, body, min(self._timeout, timeout))
        with self._released(connection, response):
            if response.status >= 400:
                raise _status_error(response)
            raw = response.read()
        return json.loads(raw)

    @staticmethod
    @contextmanager
    def _released(
        connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> Iterator[None]:
        """Read a response; then keep its connection for the next request only if the
        answer was read to its end and the server keeps the connection open."""
        try:
            yield
        finally:
            if not response.isclosed() or response.will_close:
                connection.close()

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float,
        *,
        stream: bool = False,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request; return its connection and the response, headers read."""
        headers = self._stream_headers if stream else self._headers
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": "application/json"}
        target = path or "/"
        if self._via and self._scheme == "http":
            host = f"[{self._host}]" if ":" in self._host else self._host
            target = f"http://{host}:{self._port}{target}"  # a proxy wants the whole URL
            headers = {**headers, **self._via[2]}
        for attempt in (1, 2):
            connection, reused = self._connection(timeout)
            try:
                connection.request(method, target, body=data, headers=headers)
                return connection, connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if not reused or attempt == 2:
                    raise
                # The server closed a kept-alive connection as the request went out: the
                # request was not read. Once more, on a new connection.
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the server, and whether it already carried requests."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.sock is not None and _dropped(connection.sock):
            connection.close()
        if connection is None:
            connection = self._new_connection(timeout)
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
            return connection, True
        return connection, False

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._via_error:
            raise ConnectionFailure("connect", self._via_error)
        host, port = self._host, self._port
        if self._via:
            host, port = self._via[0], self._via[1]
        if self._scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=tls_context()
            )
            if self._via:  # through the proxy: a CONNECT tunnel to the server
                connection.set_tunnel(self._host, self._port, headers=self._via[2])
            return connection
        if self._scheme != "http":
            raise ConnectionFailure("connect", f"not an http(s) URL: {self._scheme or 'none'}")
        return http.client.HTTPConnection(host, port, timeout=timeout)
