"""The model client: chat completions with retries, server quirks and token counting."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai

try:  # openai 3.x transports over httpx2, earlier releases over httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as _httpx  # type: ignore[no-redef]

from . import compat
from .config import redact_url
from .errors import ServerError
from .wire import body_message, message_of, sse_events, token_count

MAX_RETRY_AFTER_S = 60.0
# Where servers offer a tokenizer (vLLM and llama.cpp at /tokenize, llama-cpp-python
# at /extras/tokenize); one body carries the field name each of them reads.
_TOKENIZE_PATHS = ("/tokenize", "/extras/tokenize")


@dataclass(frozen=True)
class Completion:
    """What came back for one request."""

    text: str
    finish_reason: str  # the server's, or "client_stop" when the caller ended the stream
    prompt_tokens: int
    completion_tokens: int
    tokens_source: str  # usage | stream_usage | tokenizer | estimate
    latency_s: float
    first_token_s: float | None


class IncompleteStream(Exception):
    """A stream ended without a finish_reason (dropped, cut, or empty)."""

    def __init__(self, partial: str) -> None:
        super().__init__("the stream ended before the reply was finished")
        self.partial = partial


class HTTPStatusError(Exception):
    """A non-2xx answer to a request roundtable sent itself (the streaming path)."""

    def __init__(self, status: int, message: str, headers: Any) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.headers = status, message, headers


def _status(exc: Exception) -> tuple[int, str, Any]:
    """(status, message, headers) of an HTTP error from either path."""
    if isinstance(exc, HTTPStatusError):
        return exc.status, exc.message, exc.headers
    assert isinstance(exc, openai.APIStatusError)
    return exc.status_code, _message(exc), exc.response.headers


class ContextOverflow(Exception):
    """The server said the prompt plus max_tokens does not fit its context."""

    def __init__(self, limit: int | None, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def estimate_tokens(text: str) -> int:
    """A rough token count when the server offers none: about 4 characters a token."""
    return math.ceil(len(text) / 4)


@dataclass
class ClientState:
    """What a client learns about its server during a run."""

    mode: str = "standard"
    stream_failures: int = 0
    streaming: bool = True
    tokenizer: str | None = None  # the path that worked
    tokenizer_checked: bool = False
    stream_usage: bool = True  # False once a server refuses stream_options
    window: int | None = None
    window_checked: bool = False
    models: list[dict[str, Any]] | None = None  # the server's listing, asked once


class ChatClient:
    """Talks to one OpenAI-compatible endpoint."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str | None,
        timeout: float = 120.0,
        *,
        compat_mode: str = "auto",
        retries: int = 4,
        retry_wait: float = 0.5,
        notice: Callable[[str], None] | None = None,
        stream_failure_limit: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = (
            self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        )
        self.model = model
        self.auto = compat_mode == "auto"
        self.state = ClientState(mode="standard" if self.auto else compat_mode)
        self.retries = retries
        self.retry_wait = retry_wait
        self.stream_failure_limit = stream_failure_limit
        self._notice = notice or (lambda text: None)
        self._api_key = api_key
        self._timeout = timeout
        # Retries are ours: the openai client's would retry a chat-template error (HTTP
        # 500 on llama.cpp) and ignore what the error says.
        # One connection pool (and one TLS setup) for both the openai client and the
        # requests roundtable sends itself.
        self._http = _httpx.Client(timeout=timeout)
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            http_client=self._http,
        )
        self._rng = random.Random()

    @property
    def where(self) -> str:
        """The endpoint, safe to print."""
        return redact_url(self.base_url) or self.base_url

    @property
    def mode(self) -> str:
        """The message layout currently sent (standard, no-system or alternating)."""
        return self.state.mode

    def close(self) -> None:
        """Release connections."""
        self._client.close()
        self._http.close()

    # -- errors and retries -----------------------------------------------------------
    def _fail(self, exc: Exception, tries: int = 1) -> ServerError:
        after = f" after {tries} attempts" if tries > 1 else ""
        if isinstance(exc, (openai.APITimeoutError, _httpx.TimeoutException)):
            return ServerError(
                f"{self.where}: no answer within the timeout{after}; raise --timeout or "
                "check the server"
            )
        if isinstance(exc, (openai.APIConnectionError, _httpx.TransportError)):
            cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
            return ServerError(
                f"{self.where}: unreachable{after} ({type(cause or exc).__name__}); start the "
                "server or check --base-url"
            )
        if isinstance(exc, (openai.APIStatusError, HTTPStatusError)):
            status, text, _ = _status(exc)
            if status == 401:
                return ServerError(
                    f"{self.where}: the server rejected the API key (401); set the environment "
                    "variable named by api_key_env (default OPENAI_API_KEY)"
                )
            if status == 404 and self.model:
                return ServerError(
                    f"{self.where}: not found (404) for model {self.model!r}; check --model "
                    "and --base-url (it usually ends in /v1)"
                )
            return ServerError(f"{self.where}: HTTP {status}{after}: {text}")
        return ServerError(f"{self.where}: {exc}")

    def _wait(self, attempt: int, exc: Exception) -> float:
        """Seconds to wait before retry number `attempt`: Retry-After, else backoff."""
        if isinstance(exc, HTTPStatusError):
            headers = exc.headers
        else:
            response = getattr(exc, "response", None)
            headers = response.headers if response is not None else {}
        try:
            if headers.get("retry-after-ms"):
                return min(float(headers["retry-after-ms"]) / 1000, MAX_RETRY_AFTER_S)
            if headers.get("retry-after"):
                return min(float(headers["retry-after"]), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP date or junk: fall back to our own backoff
        backoff = min(self.retry_wait * 2 ** (attempt - 1), 8.0)
        return backoff * self._rng.uniform(0.75, 1.25)

    def _with_retries(self, send: Callable[[], Any]) -> Any:
        """Run `send`, retrying what can pass (429, 5xx, connection, timeout)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except (openai.APIStatusError, HTTPStatusError) as exc:
                status, text, _ = _status(exc)
                if compat.is_template_error(status, text):
                    following = compat.stricter(self.state.mode) if self.auto else None
                    if following is None:
                        raise ServerError(
                            f"{self.where}: the server's chat template rejected the messages "
                            f"({text}); try --compat no-system or --compat alternating"
                        ) from None
                    self.state.mode = following
                    note = (
                        f"roundtable: {self.where} rejected the message layout ({text[:80]}); "
                        f"using compat mode '{following}' from now on"
                    )
                    self._notice(note)
                    attempt -= 1  # a layout change is not a failed attempt
                    continue
                if status in (400, 422) and "stream_options" in text and self.state.stream_usage:
                    # An older or strict server that rejects the field: ask without it
                    # (token counts then come from its tokenizer or an estimate).
                    self.state.stream_usage = False
                    attempt -= 1
                    continue
                if compat.is_context_error(status, text):
                    raise ContextOverflow(compat.context_limit(text), text) from None
                retryable = status in (408, 409, 429) or status >= 500
                if not retryable or attempt > self.retries:
                    raise self._fail(exc, attempt) from None
                time.sleep(self._wait(attempt, exc))
            except (
                openai.APIConnectionError,
                openai.APITimeoutError,
                _httpx.TransportError,
            ) as exc:
                if attempt > self.retries:
                    raise self._fail(exc, attempt) from None
                time.sleep(self._wait(attempt, exc))

    # -- what the server can tell us ----------------------------------------------------
    def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        if self.model:
            return self.model
        listing = self._models()
        if not listing:
            raise ServerError(f"{self.where}: the server lists no models; set --model")
        self.model = str(listing[0]["id"])
        return self.model

    def _models(self) -> list[dict[str, Any]]:
        if self.state.models is None:
            try:
                page = self._with_retries(lambda: self._client.models.list())
            except openai.OpenAIError as exc:
                raise self._fail(exc) from None
            self.state.models = [m.model_dump() for m in page.data]
        return self.state.models

    def context_window(self) -> int | None:
        """The model's context size, as the server reports it (vLLM: max_model_len)."""
        if not self.state.window_checked:
            self.state.window_checked = True
            try:
                models = self._models()
            except ServerError:
                models = []
            wanted = self.resolve_model() if models else None
            for m in models:
                if m.get("id") == wanted and isinstance(m.get("max_model_len"), int):
                    self.state.window = m["max_model_len"]
        return self.state.window

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "text/event-stream"}

    def _post_root(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(
            self.root_url + path, json=body, headers=self._headers(), timeout=min(self._timeout, 30)
        )
        response.raise_for_status()
        return response.json()

    def count_tokens(self, text: str) -> int | None:
        """Tokens in text by the server's own tokenizer, or None if it offers none."""
        if self.state.tokenizer_checked and self.state.tokenizer is None:
            return None
        body = {"prompt": text, "content": text, "input": text, "model": self.model or ""}
        paths = [self.state.tokenizer] if self.state.tokenizer else list(_TOKENIZE_PATHS)
        for path in paths:
            try:
                data = self._post_root(path, body)
            except (_httpx.HTTPError, ValueError):
                continue
            count = token_count(data)
            if count is not None:
                self.state.tokenizer, self.state.tokenizer_checked = path, True
                return count
        if not self.state.tokenizer_checked:
            self.state.tokenizer_checked = True
            self.state.tokenizer = None
        return None

    # -- completions ----------------------------------------------------------------------
    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        stream: bool = True,
        sampling: dict[str, Any] | None = None,
        on_text: Callable[[str], bool | None] | None = None,
        prompt_tokens_hint: int | None = None,
    ) -> Completion:
        """Send one chat request; stream text to on_text (which may return False to stop)."""
        sampling = dict(sampling or {})
        extra_body = sampling.pop("extra_body", None)
        params: dict[str, Any] = {
            "model": self.resolve_model(),
            "temperature": temperature,
            "max_tokens": max_tokens,  # max_completion_tokens is ignored by some servers
            **sampling,
        }
        if stop:
            params["stop"] = list(stop)
        if seed is not None:
            params["seed"] = seed
        if extra_body:
            params["extra_body"] = extra_body
        use_stream = stream and self.state.streaming

        def send() -> Completion:
            shaped = compat.adapt(messages, self.state.mode)
            start = time.perf_counter()
            if use_stream:
                return self._stream({**params, "messages": shaped}, start, on_text)
            response = self._client.chat.completions.create(
                **params,
                messages=shaped,  # type: ignore[arg-type]
            )
            return self._whole(response, start, on_text)

        try:
            result: Completion = self._with_retries(send)
        except IncompleteStream:
            self.state.stream_failures += 1
            if self.state.streaming and self.state.stream_failures >= self.stream_failure_limit:
                self.state.streaming = False
                self._notice(
                    f"roundtable: {self.where} dropped {self.state.stream_failures} streams; "
                    "not streaming for the rest of the run"
                )
            raise
        except openai.OpenAIError as exc:
            raise self._fail(exc) from None
        return self._account(result, messages, prompt_tokens_hint)

    def _account(
        self, result: Completion, messages: Sequence[dict[str, Any]], hint: int | None
    ) -> Completion:
        if result.tokens_source != "none":
            return result
        # No usage from the server: its tokenizer, else an estimate.
        completion = self.count_tokens(result.text) if result.text else 0
        if completion is not None and hint is not None:
            prompt, source = hint, "tokenizer"
        else:
            prompt = hint if hint is not None else _estimate_prompt(messages)
            completion = estimate_tokens(result.text)
            source = "estimate"
        return Completion(
            result.text,
            result.finish_reason,
            prompt,
            completion,
            source,
            result.latency_s,
            result.first_token_s,
        )

    def _whole(
        self, response: Any, start: float, on_text: Callable[[str], bool | None] | None
    ) -> Completion:
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        latency = time.perf_counter() - start
        if on_text and text:
            on_text(text)
        usage = response.usage
        return Completion(
            text=text,
            finish_reason=(choice.finish_reason if choice else None) or "unknown",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            tokens_source="usage" if usage else "none",
            latency_s=latency,
            first_token_s=latency if text else None,
        )

    def _stream(
        self,
        params: dict[str, Any],
        start: float,
        on_text: Callable[[str], bool | None] | None,
    ) -> Completion:
        # Sent and parsed here rather than through the openai client: its request
        # validation and per-chunk model objects cost several times more CPU than all of
        # roundtable's own work per turn (bench/overhead.py). Same wire format.
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        first: float | None = None
        body = {**params, "stream": True}
        if self.state.stream_usage:
            body["stream_options"] = {"include_usage": True}
        body.update(body.pop("extra_body", None) or {})
        with self._http.stream(
            "POST", self.base_url + "/chat/completions", json=body, headers=self._headers()
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise HTTPStatusError(
                    response.status_code, body_message(response), response.headers
                )
            try:
                for event in sse_events(response.iter_lines()):
                    if event == "[DONE]":
                        # Read on to the end of the body so the connection can be reused.
                        continue
                    chunk = json.loads(event)
                    if not isinstance(chunk, dict) or "error" in chunk:
                        raise IncompleteStream("".join(parts))  # an error event mid-stream
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            if first is None:
                                first = time.perf_counter() - start
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
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=int(usage.get("prompt_tokens", 0)) if usage else 0,
            completion_tokens=int(usage.get("completion_tokens", 0)) if usage else 0,
            tokens_source="stream_usage" if usage else "none",
            latency_s=time.perf_counter() - start,
            first_token_s=first,
        )


def _estimate_prompt(messages: Sequence[dict[str, Any]]) -> int:
    return sum(estimate_tokens(str(m.get("content", ""))) + 4 for m in messages)


def _message(exc: openai.APIStatusError) -> str:
    """The error message of an openai-client status error."""
    return message_of(exc.body) or str(exc.message)[:300]
