"""The model client: one chat completion at a time, streamed or not, with errors made plain."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai

try:  # openai 3.x transports over httpx2, earlier releases over httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as _httpx  # type: ignore[no-redef]

from .config import redact_url
from .errors import ServerError


@dataclass(frozen=True)
class Completion:
    """What came back for one request."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tokens_source: str  # "usage" (server-reported) or "estimate" (characters / 4)
    latency_s: float
    first_token_s: float | None


class IncompleteStream(Exception):
    """A stream ended without a finish_reason (dropped, cut, or empty)."""

    def __init__(self, partial: str) -> None:
        super().__init__("the stream ended before the reply was finished")
        self.partial = partial


def estimate_tokens(text: str) -> int:
    """A rough token count when the server reports none: about 4 characters a token."""
    return math.ceil(len(text) / 4)


class ChatClient:
    """Talks to one OpenAI-compatible endpoint."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str | None,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
        )

    @property
    def where(self) -> str:
        """The endpoint, safe to print."""
        return redact_url(self.base_url) or self.base_url

    def _fail(self, exc: Exception) -> ServerError:
        if isinstance(exc, openai.APITimeoutError):
            return ServerError(
                f"{self.where}: no answer within the timeout; raise --timeout or check the server"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return ServerError(
                f"{self.where}: unreachable ({type(cause).__name__}); start the server or "
                "check --base-url"
            )
        if isinstance(exc, openai.AuthenticationError):
            return ServerError(
                f"{self.where}: the server rejected the API key (401); set the environment "
                "variable named by api_key_env (default OPENAI_API_KEY)"
            )
        if isinstance(exc, openai.NotFoundError) and self.model:
            return ServerError(
                f"{self.where}: not found (404) for model {self.model!r}; check --model "
                "and --base-url (it usually ends in /v1)"
            )
        if isinstance(exc, openai.APIStatusError):
            return ServerError(f"{self.where}: HTTP {exc.status_code}: {_message(exc)}")
        return ServerError(f"{self.where}: {exc}")

    def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        if self.model:
            return self.model
        try:
            listing = self._client.models.list()
            ids = [m.id for m in listing.data]
        except openai.OpenAIError as exc:
            raise self._fail(exc) from None
        if not ids:
            raise ServerError(f"{self.where}: the server lists no models; set --model")
        self.model = ids[0]
        return ids[0]

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str],
        seed: int | None,
        stream: bool,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """Send one chat request; stream text to on_text as it arrives."""
        params: dict[str, Any] = {
            "model": self.resolve_model(),
            "messages": list(messages),
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if stop:
            params["stop"] = list(stop)
        if seed is not None:
            params["seed"] = seed
        start = time.perf_counter()
        try:
            if stream:
                return self._stream(params, start, on_text)
            response = self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise self._fail(exc) from None
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        if on_text and text:
            on_text(text)
        latency = time.perf_counter() - start
        usage = response.usage
        return Completion(
            text=text,
            finish_reason=(choice.finish_reason if choice else None) or "unknown",
            prompt_tokens=usage.prompt_tokens if usage else _estimate_prompt(messages),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(text),
            tokens_source="usage" if usage else "estimate",
            latency_s=latency,
            first_token_s=latency if text else None,
        )

    def _stream(
        self, params: dict[str, Any], start: float, on_text: Callable[[str], None] | None
    ) -> Completion:
        stream = self._client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        parts: list[str] = []
        finish: str | None = None
        usage = None
        first: float | None = None
        try:
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        if first is None:
                            first = time.perf_counter() - start
                        parts.append(delta)
                        if on_text:
                            on_text(delta)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except (openai.APIError, _httpx.TransportError) as exc:
            # A stream that broke after it started (a mid-stream error event or a cut
            # connection): the openai client never retries those, so the caller decides.
            if isinstance(exc, openai.APIStatusError):
                raise
            raise IncompleteStream("".join(parts)) from exc
        finally:
            stream.close()
        text = "".join(parts)
        if finish is None:
            raise IncompleteStream(text)
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=usage.prompt_tokens if usage else _estimate_prompt(params["messages"]),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(text),
            tokens_source="usage" if usage else "estimate",
            latency_s=time.perf_counter() - start,
            first_token_s=first,
        )


def _estimate_prompt(messages: Sequence[dict[str, Any]]) -> int:
    return sum(estimate_tokens(str(m.get("content", ""))) + 4 for m in messages)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(body.get("message"), str):
            return body["message"][:300]
    return str(exc.message)[:300]
