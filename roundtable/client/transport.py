"""HTTP to one endpoint: one connection pool, and one family of exceptions for every failure."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai

try:  # openai 3.x transports over httpx2, earlier releases over httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as _httpx  # type: ignore[no-redef]

from .wire import body_message, byte_lines, message_of, sse_events

PROBE_TIMEOUT_S = 10.0  # tokenizer and server-info requests: small answers, or none


_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The TLS context every client shares (httpx's default, made once): making one reads
    the CA store, about 20 ms of CPU, and a study makes a client per worker thread."""
    with _TLS_LOCK:  # the threads of a study start together: one makes it, the rest wait
        if not _TLS:
            _TLS.append(_httpx.create_ssl_context())
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
    """Name a transport-level failure by walking its chain of causes."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return ConnectionFailure("tls", str(next(e for e in chain if isinstance(e, ssl.SSLError))))
    if any(isinstance(e, (_httpx.TimeoutException, openai.APITimeoutError)) for e in chain):
        return ConnectionFailure("timeout", "no answer within the timeout")
    inner = next((e for e in chain if isinstance(e, _httpx.TransportError)), exc)
    return ConnectionFailure("connect", type(inner).__name__)


@contextmanager
def _one_family() -> Iterator[None]:
    """Turn the openai client's and httpx's exceptions into ours."""
    try:
        yield
    except openai.APIStatusError as exc:
        message = message_of(exc.body) or str(exc.message)[:300]
        raise StatusError(exc.status_code, message, exc.response.headers) from None
    except (openai.APIConnectionError, _httpx.TransportError) as exc:
        raise _failure(exc) from None
    except (openai.APIError, ValueError) as exc:  # a 2xx body that is not what was asked
        raise ConnectionFailure("garbled", str(exc)[:200] or type(exc).__name__) from None


class Transport:
    """Requests to one OpenAI-compatible server over one connection pool."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = (
            self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        )
        self._timeout = timeout
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._stream_headers = {**self._auth, "Accept": "text/event-stream"}
        self._http = _httpx.Client(timeout=timeout, verify=tls_context())
        # The openai client serves the plain requests (listing, whole replies); it shares
        # the pool, and its own retries are off: ours read what an error says.
        self._openai = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            http_client=self._http,
        )

    def close(self) -> None:
        """Release connections."""
        self._openai.close()
        self._http.close()

    def list_models(self) -> list[dict[str, Any]]:
        """The server's /models listing, each entry with every field it sent."""
        with _one_family():
            page = self._openai.models.list()
            return [m.model_dump() for m in page.data]

    def chat(self, body: dict[str, Any]) -> Reply:
        """One chat request answered in one piece."""
        # Sent and read here, as streamed requests are: the openai client's request
        # validation and response models cost ~2.5 ms of CPU per request, more than the
        # rest of a turn's own work. The body goes out as given, server-specific keys too.
        with _one_family():
            response = self._http.post(
                self.base_url + "/chat/completions", json=body, headers=self._auth
            )
            if response.status_code >= 400:
                raise StatusError(response.status_code, body_message(response), response.headers)
            data = response.json()  # not JSON: a ValueError, "garbled"
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
        self, body: dict[str, Any], on_text: Callable[[str], bool | None] | None
    ) -> Reply:
        """One streamed chat request; on_text gets each delta and may return False to stop."""
        # Sent and parsed here rather than through the openai client: its request
        # validation and per-chunk model objects cost several times more CPU than all of
        # roundtable's own work per turn (bench/overhead.py). Same wire format.
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        first: float | None = None
        with (
            _one_family(),
            self._http.stream(
                "POST", self.base_url + "/chat/completions", json=body, headers=self._stream_headers
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise StatusError(response.status_code, body_message(response), response.headers)
            try:
                for event in sse_events(byte_lines(response.iter_bytes())):
                    if event == "[DONE]":
                        continue  # read on to the end so the connection can be reused
                    chunk = json.loads(event)
                    if not isinstance(chunk, dict) or "error" in chunk:
                        raise IncompleteStream("".join(parts))  # an error event mid-stream
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if first is None:
                                first = time.perf_counter()
                            parts.append(delta)
                            if on_text and on_text(delta) is False:
                                finish = "client_stop"
                                break
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    if finish == "client_stop":
                        break  # the rest is not needed: close instead of reading on
            except (_httpx.TransportError, ValueError) as exc:
                # A cut connection or a garbled event after the stream started: never
                # retried blindly; the caller starts the turn again.
                raise IncompleteStream("".join(parts)) from exc
        text = "".join(parts)
        if finish is None:
            raise IncompleteStream(text)
        return Reply(text, finish, usage, first)

    def post_root(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON to a path at the server's root (tokenizers live outside /v1)."""
        return self._json("POST", path, body)

    def get_root(self, path: str) -> Any:
        """GET JSON from a path at the server's root."""
        return self._json("GET", path, None)

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        with _one_family():
            response = self._http.request(
                method,
                self.root_url + path,
                json=body,
                headers=self._auth,
                timeout=min(self._timeout, PROBE_TIMEOUT_S),
            )
            if response.status_code >= 400:
                raise StatusError(response.status_code, body_message(response), response.headers)
            try:
                return response.json()
            except ValueError:
                raise StatusError(response.status_code, "not JSON", response.headers) from None
