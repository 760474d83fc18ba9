"""The chat client: one endpoint's completions, with its layout, retries and token counts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import config as _config  # a module, not its names: config imports this package
from . import compat
from .classify import CHANGE_LAYOUT, DROP_STREAM_OPTIONS, Action, Endpoint
from .retry import Retrier
from .server import ServerFacts, ServerInfo
from .transport import IncompleteStream, Reply, Transport

# Chat-template tokens around each message, added when this client counts a prompt itself.
TEMPLATE_TOKENS_PER_MESSAGE = 8


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
    requests: int = 1  # HTTP requests this completion took, retries and re-asks included


def estimate_tokens(text: str) -> int:
    """A rough token count when the server offers none: about 4 characters a token."""
    return math.ceil(len(text) / 4)


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
        key_env: str = "OPENAI_API_KEY",
        debug: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        facts: ServerFacts | None = None,
        gather: float = 0.0,
    ) -> None:
        """`facts`: what the server said, shared with other clients of the same endpoint.
        `gather`: for streams nobody watches (a study's), the pump's tick in seconds: the
        pump reads them together that often (Transport.stream_chat); 0: read in this thread."""
        self._where = _config.redact_url(base_url.rstrip("/")) or base_url
        self._transport = Transport(base_url, api_key, timeout)
        self.retrier = Retrier(
            Endpoint(self._where, key_env), retries, retry_wait, notice=notice, debug=debug,
            sleep=sleep,
        )  # fmt: skip
        self.server = ServerInfo(self._transport, self.retrier, model, facts)
        self.auto = compat_mode == "auto"
        self._mode = "standard" if self.auto else compat_mode
        self.gather = gather
        self.stream_failure_limit = stream_failure_limit
        self.stream_failures = 0
        self.streaming = True  # False once the server dropped too many streams
        self.stream_usage = True  # False once the server refused stream_options
        self._notice = notice or (lambda text: None)

    @property
    def where(self) -> str:
        """The endpoint, safe to print."""
        return self._where

    @property
    def model(self) -> str | None:
        """The model asked for (None until resolved when the server chooses)."""
        return self.server.model

    @property
    def mode(self) -> str:
        """The message layout currently sent (standard, no-system or alternating)."""
        return self._mode

    def close(self) -> None:
        """Release connections."""
        self._transport.close()

    def probe(self) -> str:
        """Check the endpoint before a run: list its models (once) and resolve the model.

        Raises ServerError with the fix when the endpoint is down or misconfigured.
        """
        self.server.models()
        return self.server.resolve_model()

    def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        return self.server.resolve_model()

    def context_window(self) -> int | None:
        """The model's context size, where the server reports it."""
        return self.server.context_window()

    @property
    def family(self) -> str:
        """What serves the endpoint: llama.cpp, llama-cpp-python or unknown."""
        return self.server.family

    def count_tokens(self, text: str) -> int | None:
        """Tokens in text by this server's own tokenizer, or None if it offers none."""
        return self.server.count_tokens(text)

    @property
    def counts_by_request(self) -> bool:
        """Whether count_tokens asks the server (its tokenizer was found), not estimates."""
        return self.server.tokenizer is not None

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
        """Send one chat request; stream text to on_text (which may return False to stop).

        `prompt_tokens_hint` must come from this client's own count_tokens; it saves
        counting the prompt again when the server reports no usage.
        """
        sampling = dict(sampling or {})
        body: dict[str, Any] = {
            "model": self.resolve_model(),
            "temperature": temperature,
            "max_tokens": max_tokens,  # max_completion_tokens is ignored by some servers
            **sampling,
        }
        extra_body = body.pop("extra_body", None)
        if stop:
            body["stop"] = list(stop)
        if seed is not None:
            body["seed"] = seed
        body.update(extra_body or {})  # server-specific keys, sent as they are
        streamed = stream and self.streaming
        started = [0.0]

        def send() -> Reply:
            asked = {**body, "messages": compat.adapt(messages, self._mode)}
            started[0] = time.perf_counter()
            if not streamed:
                return self._transport.chat(asked)
            asked["stream"] = True
            if self.stream_usage:
                asked["stream_options"] = {"include_usage": True}
            return self._transport.stream_chat(asked, on_text, self.gather)

        try:
            reply, requests = self.retrier.run(send, self._adapt)
        except IncompleteStream:
            self._stream_failed()
            raise
        latency = time.perf_counter() - started[0]
        if not streamed and on_text and reply.text:
            on_text(reply.text)
        first = reply.first_token_at - started[0] if reply.first_token_at else None
        finish = reply.finish_reason or "unknown"
        if reply.usage:
            return Completion(
                reply.text,
                finish,
                int(reply.usage.get("prompt_tokens") or 0),
                int(reply.usage.get("completion_tokens") or 0),
                "stream_usage" if streamed else "usage",
                latency,
                first,
                requests,
            )
        prompt, completion, source = self._count(reply.text, messages, prompt_tokens_hint)
        return Completion(reply.text, finish, prompt, completion, source, latency, first, requests)

    def _adapt(self, action: Action) -> bool:
        """Change the request as a strict server needs; False when nothing is left to try."""
        if action.kind == CHANGE_LAYOUT:
            following = compat.stricter(self._mode) if self.auto else None
            if following is None:
                return False
            self._mode = following
            self._notice(
                f"roundtable: {self.where} rejected the message layout ({action.detail[:80]}); "
                f"using compat mode '{following}' from now on"
            )
            return True
        if action.kind == DROP_STREAM_OPTIONS and self.stream_usage:
            # An older or strict server that rejects the field: ask without it (token
            # counts then come from its tokenizer or an estimate).
            self.stream_usage = False
            return True
        return False

    def _stream_failed(self) -> None:
        self.stream_failures += 1
        if self.streaming and self.stream_failures >= self.stream_failure_limit:
            self.streaming = False
            self._notice(
                f"roundtable: {self.where} dropped {self.stream_failures} streams; "
                "not streaming for the rest of the run"
            )

    def _count(
        self, text: str, messages: Sequence[dict[str, Any]], hint: int | None
    ) -> tuple[int, int, str]:
        """(prompt, completion, source) when the server reported no usage."""
        # This server's tokenizer when it has one, window or not; else an estimate.
        completion = self.server.count_tokens(text) if text else 0
        prompt = hint
        if completion is not None and prompt is None:
            joined = "\n\n".join(str(m.get("content", "")) for m in messages)
            counted = self.server.count_tokens(joined)
            if counted is not None:
                prompt = counted + TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
        if completion is not None and prompt is not None and self.server.tokenizer:
            return prompt, completion, "tokenizer"
        estimate = sum(estimate_tokens(str(m.get("content", ""))) + 4 for m in messages)
        return (hint if hint is not None else estimate), estimate_tokens(text), "estimate"
