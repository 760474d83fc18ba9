"""HTTP to one endpoint: kept-alive connections, and one family of exceptions for every
failure.

The HTTP/1.1 exchange is written here on plain sockets (RFC 9112: a request head, then a
response head and a body framed by chunks, a length or the close), not with http.client:
at a study's scale roundtable makes a few requests per turn, and http.client's request
building and its email-package header parser cost about three times the CPU of the whole
exchange below (bench/study.py, README "Studies")."""

from __future__ import annotations

import base64
import json
import re
import select
import socket
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
# The pump's tick: a study's streams are read together this often. Each read of a stream
# costs ~70 us however many tokens it brings (bench/study.py: 6.0 ms per turn at 0.05 s,
# 5.2 at 0.1, 4.9 at 0.2); a reply's end is seen up to one tick late (0.2 s: ~3% fewer
# turns/s against the paced dummy server, less against slower real models).
UNWATCHED_GATHER_S = 0.2
MAX_HEAD = 65536  # bytes of response status line and headers before it counts as garbled


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


class Garbled(ValueError):
    """Bytes that are not an HTTP answer."""


class Unanswered(ConnectionResetError):
    """The server closed the connection before the first byte of an answer."""


class Cut(ConnectionResetError):
    """The server closed the connection in the middle of an answer."""


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
    if isinstance(exc, Unanswered):
        return ConnectionFailure("connect", "the server closed the connection without answering")
    if isinstance(exc, Cut):
        return ConnectionFailure("connect", "the server closed the connection mid-answer")
    if isinstance(exc, Garbled):
        return ConnectionFailure("garbled", f"not an HTTP answer ({exc})"[:200])
    if isinstance(exc, ValueError):
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
    except (OSError, ValueError) as exc:
        raise _failure(exc) from None


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


def _header_block(headers: Mapping[str, str]) -> bytes:
    """Header lines, encoded once; a value that would break the head is refused."""
    lines = []
    for name, value in headers.items():
        if any(c in value for c in "\r\n\0"):
            raise Garbled(f"the {name} header would hold a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


_HEAD_END = re.compile(rb"\r?\n\r?\n")


@dataclass
class Answer:
    """A response whose head has been read: the body comes from `body` (a wire.Body),
    starting with `early` (bytes that came with the head)."""

    status: int
    reason: str
    headers: dict[str, str]  # names in lower case
    body: Body
    early: bytes
    will_close: bool  # the server closes the connection after this answer


def read_head(sock: Any, method: str = "GET") -> Answer:
    """Read a response's status line and headers from `sock` (interim 1xx answers
    skipped) and work out how its body is framed (RFC 9112, section 6.3)."""
    buf = b""
    while True:
        end = _HEAD_END.search(buf)
        if end is None:
            if len(buf) > MAX_HEAD:
                raise Garbled("headers without an end")
            data = sock.recv(READ_SIZE)
            if not data:
                raise Cut("cut in the headers") if buf else Unanswered("no answer")
            buf += data
            continue
        head, buf = buf[: end.start()], buf[end.end() :]
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        status_line = lines[0].decode("latin-1")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise Garbled(f"status line {status_line[:40]!r}")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the answer follows
        headers: dict[str, str] = {}
        name = ""
        for line in lines[1:]:
            text = line.decode("latin-1")
            if text[:1] in (" ", "\t") and name:  # an obsolete folded line
                headers[name] = f"{headers[name]} {text.strip()}".strip()
                continue
            name, colon, value = text.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                name = ""
                continue  # not a header line: skipped, as browsers do
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = _framing(method, status, headers)
        return Answer(status, reason, headers, body, buf, _closes(version, headers, body))


def _framing(method: str, status: int, headers: Mapping[str, str]) -> Body:
    if method == "HEAD" or status in (204, 304) or status < 200 or method == "CONNECT":
        return Body(False, 0)
    coding = headers.get("transfer-encoding", "")
    if coding:
        if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            return Body(False, None)  # some other coding: the body runs to the close
        return Body(True, None)
    if "content-length" in headers:
        sizes = {v.strip() for v in headers["content-length"].split(",")}
        if len(sizes) != 1 or not (size := sizes.pop()).isdigit():
            raise Garbled("a bad Content-Length")
        return Body(False, int(size))
    return Body(False, None)


def _closes(version: str, headers: Mapping[str, str], body: Body) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if "close" in tokens:
        return True
    if version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return not body.chunked and body.length is None  # a body framed by the close


def read_body(sock: Any, answer: Answer) -> bytes:
    """The rest of a response's body, read to its end (Cut if the server hangs up early)."""
    body, parts = answer.body, []
    if answer.early:
        parts.append(body.feed(answer.early))
        answer.early = b""
    while not body.done:
        data = sock.recv(READ_SIZE)
        if not data:
            if body.chunked or body.length is not None:
                raise Cut("the body was cut")
            body.done = True
            break
        parts.append(body.feed(data))
    return b"".join(parts)


class Connection:
    """One HTTP/1.1 connection: its socket (None once closed) and its requests so far."""

    __slots__ = ("sock", "requests")

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.requests = 0

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:  # pragma: no cover - closing what already failed
                pass


class _Stream:
    """A streamed chat reply as its bytes come: the text, the end, the usage."""

    def __init__(self, on_text: Callable[[str], bool | None] | None, each: bool) -> None:
        self.on_text = on_text
        self.each = each  # on_text gets each event's text, not each read's
        self.lines, self.events = Lines(), Events()
        self.parts: list[str] = []
        self.pending: list[str] = []  # deltas not yet given to on_text
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.first: float | None = None
        self.stopped = False  # on_text asked to stop

    def take(self, data: bytes) -> None:
        """Read the events these bytes complete."""
        if not self.each and self._whole_events(data):
            return
        for line in self.lines.feed(data):
            event = self.events.line(line)
            if event is not None:
                self._event(event)
                if self.each and not self.deliver():
                    return

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

    def _whole_events(self, data: bytes) -> bool:
        """Read `data` at once if it is whole events of one `data: ` line each and nothing
        is pending (what a read of a pumped stream nearly always is): their JSON in one
        decode. False, having read nothing, for anything else (a comment, a part of an
        event, a bad event), which the line-by-line reading takes."""
        if self.lines.pending or self.events.pending or not data.endswith(b"\n\n"):
            return False
        if b"\r" in data:
            return False
        blocks = data[:-2].split(b"\n\n")
        if not all(b.startswith(b"data: ") and b"\n" not in b for b in blocks):
            return False
        payloads = [b[6:] for b in blocks if b != b"data: [DONE]"]
        try:
            chunks = json.loads(b"[" + b",".join(payloads) + b"]")
        except ValueError:
            return False
        if len(chunks) != len(payloads):
            return False  # an event that held more than one value
        for chunk in chunks:
            self._chunk(chunk)
        return True

    def _event(self, event: str) -> None:
        if event == "[DONE]":
            return  # read on to the end so the connection can be reused
        self._chunk(json.loads(event))

    def _chunk(self, chunk: Any) -> None:
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
    thread, so the threads of a study never wait for each other's)."""

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
        via = _proxy(self._scheme, self._host)
        self._via = via if isinstance(via, tuple) else None
        self._via_error = via if isinstance(via, str) else None
        self._authority = self._host_port(self._host, self._port)
        headers = {
            "Host": self._authority
            if self._port != (443 if self._scheme == "https" else 80)
            else self._host_port(self._host, None),
            "User-Agent": f"roundtable/{__version__}",
            "Accept-Encoding": "identity",  # a body in gzip could not be read as it streams
            "Authorization": auth,
        }
        if self._via and self._scheme == "http":
            headers.update(self._via[2])
        self._head_error: Garbled | None = None
        try:
            self._heads = {
                accept: _header_block({**headers, "Accept": accept})
                for accept in ("application/json", "text/event-stream")
            }
        except (Garbled, UnicodeEncodeError):
            self._heads = {}
            self._head_error = Garbled("the API key or URL credentials hold characters that "
                                       "HTTP headers cannot carry")  # fmt: skip
        self._local = threading.local()
        self._open: set[Connection] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _host_port(host: str, port: int | None) -> str:
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{port}" if port is not None else host

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
            connection, answer = self._send(
                "POST", self._path + "/chat/completions", body, self._timeout, stream=True
            )
            sock = connection.sock
            assert sock is not None
        if answer.status >= 400:
            with _one_family(), self._released(connection, answer):
                raise _status_error(sock, answer)
        pumped = bool(gather) and not answer.will_close
        stream = _Stream(on_text, each=not pumped)
        coded = answer.body

        def take(data: bytes) -> bool:
            """Feed what came (b"": the close); False once the body or the reader is done."""
            if not data:
                if coded.length is not None or coded.chunked:
                    raise Cut("the server closed the stream")
                coded.done = True
            stream.take(coded.feed(data))
            return stream.deliver() and not coded.done

        try:
            with self._released(connection, answer):  # closed unless read to the end
                early, answer.early = answer.early, b""
                if not coded.done and (not early or take(early)):
                    if pumped:
                        self._pumped(sock, take, gather)
                    else:
                        while take(sock.recv(READ_SIZE)):
                            pass
                if not stream.stopped:
                    stream.end()
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            # A cut connection or a garbled event after the stream started: never
            # retried blindly; the caller starts the turn again.
            raise IncompleteStream("".join(stream.parts)) from exc
        return stream.reply()

    def _pumped(self, sock: socket.socket, take: Callable[[bytes], bool], tick: float) -> None:
        """Read the rest of a streamed body in the pump."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            # Decrypted with the headers already: the selector cannot see these bytes.
            sock.setblocking(False)
            while sock.pending():
                if not take(sock.recv(READ_SIZE)):
                    return
        pump(tick).run(sock, take, self._timeout)

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
        connection, answer = self._send(method, path, body, min(self._timeout, timeout))
        with self._released(connection, answer):
            if answer.status >= 400:
                raise _status_error(connection.sock, answer)
            raw = read_body(connection.sock, answer)
        return json.loads(raw)

    @contextmanager
    def _released(self, connection: Connection, answer: Answer) -> Iterator[None]:
        """Read a response; then keep its connection for the next request only if the
        answer was read to its end and the server keeps the connection open."""
        try:
            yield
        finally:
            if not answer.body.done or answer.will_close or answer.body.extra:
                self._discard(connection)

    def _discard(self, connection: Connection) -> None:
        connection.close()
        with self._lock:
            self._open.discard(connection)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float,
        *,
        stream: bool = False,
    ) -> tuple[Connection, Answer]:
        """Send a request; return its connection and the answer, its head read."""
        if self._head_error is not None:
            raise self._head_error
        target = path or "/"
        if self._via and self._scheme == "http":
            target = f"http://{self._authority}{target}"  # a proxy wants the whole URL
        head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
        head += self._heads["text/event-stream" if stream else "application/json"]
        data = b""
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        message = head + b"\r\n" + data
        for attempt in (1, 2):
            connection = self._connection(timeout)
            reused = connection.requests > 0
            connection.requests += 1
            sock = connection.sock
            assert sock is not None
            try:
                sock.sendall(message)
                return connection, read_head(sock, method)
            except (ConnectionResetError, BrokenPipeError) as exc:
                self._discard(connection)
                if not reused or attempt == 2 or isinstance(exc, Cut):
                    raise
                # The server closed a kept-alive connection as the request went out: the
                # request was not read. Once more, on a new connection.
            except BaseException:
                self._discard(connection)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self, timeout: float) -> Connection:
        """This thread's connection to the server (a new one if it has none, or if the
        server closed it while it was idle), its timeout set."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None and (connection.sock is None or _dropped(connection.sock)):
            self._discard(connection)
            connection = None
        if connection is None:
            connection = Connection(self._connect(timeout))
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        assert connection.sock is not None
        connection.sock.settimeout(timeout)
        return connection

    def _connect(self, timeout: float) -> socket.socket:
        """A new socket to the server: through the environment's proxy if it names one,
        TLS for https (a CONNECT tunnel through a proxy)."""
        if self._via_error:
            raise ConnectionFailure("connect", self._via_error)
        if self._scheme not in ("http", "https"):
            raise ConnectionFailure("connect", f"not an http(s) URL: {self._scheme or 'none'}")
        host, port = (self._via[0], self._via[1]) if self._via else (self._host, self._port)
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._scheme == "https":
                if self._via:
                    self._tunnel(sock)
                sock = tls_context().wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return sock

    def _tunnel(self, sock: socket.socket) -> None:
        """Ask the proxy for a tunnel to the server (a CONNECT request)."""
        assert self._via is not None
        lines = [f"CONNECT {self._authority} HTTP/1.1", f"Host: {self._authority}"]
        lines += [f"{k}: {v}" for k, v in self._via[2].items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = read_head(sock, "CONNECT")
        if answer.status != 200:
            raise OSError(f"the proxy refused the tunnel: {answer.status} {answer.reason}")


def _status_error(sock: Any, answer: Answer) -> StatusError:
    """The error an HTTP error answer carries, its body read."""
    raw = read_body(sock, answer)
    try:
        message = message_of(json.loads(raw))
    except ValueError:
        message = raw.decode("utf-8", "replace")[:300]
    return StatusError(answer.status, message or f"HTTP {answer.status}", answer.headers)
