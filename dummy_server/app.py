"""Flask app factory for the OpenAI-compatible Markov dummy server."""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .markov import MarkovGenerator, message_text, pieces, render_chat, token_ids, tokenize
from .structured import from_schema, wanted_schema

QUIRKS = ("no-system-role", "alternating-roles", "ramble", "no-stream-options")
ROLES = ("system", "developer", "user", "assistant", "tool")
TEMPLATE_ERROR = "Conversation roles must alternate user/assistant/user/assistant/..."
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes the dummy server's behaviour."""

    model: str = "markov-dummy"
    api_key: str | None = None
    latency_ms: float = 0.0
    tokens_per_second: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    quirks: frozenset[str] = field(default_factory=frozenset)
    context_window: int = 32768
    seed: int | None = None
    retry_after_ms: int = 1000
    template_error_status: int = 400
    corpus: str | None = None  # text to learn from instead of the built-in corpus
    json_schema: bool = True  # honour response_format's JSON schema (False: ignore it)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quirks", frozenset(self.quirks))
        unknown = self.quirks - set(QUIRKS)
        if unknown:
            raise ValueError(f"unknown quirk {sorted(unknown)[0]!r}; known: {', '.join(QUIRKS)}")
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be from 0 to 1, got {value}")
        if self.context_window < 1:
            raise ValueError(f"context_window must be positive, got {self.context_window}")
        if self.latency_ms < 0 or self.tokens_per_second < 0 or self.retry_after_ms < 0:
            raise ValueError("latency_ms, tokens_per_second and retry_after_ms must be >= 0")
        if self.template_error_status not in (400, 422, 500):
            raise ValueError("template_error_status must be 400, 422 or 500")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerConfig:
        """Build a config from a mapping, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown config key {sorted(extra)[0]!r}; known: {sorted(known)}")
        return cls(**dict(data))


class ApiError(Exception):
    """An error answered as OpenAI-style JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )
        self.headers = headers or {}


def _error_response(err: ApiError) -> Response:
    body = {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    }
    resp = Response(json.dumps(body), status=err.status, mimetype="application/json")
    for key, value in err.headers.items():
        resp.headers[key] = value
    return resp


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_json() -> dict[str, Any]:
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object.")
    return body


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise _bad("'messages' is a required property.", "messages")
    if not isinstance(messages, list):
        raise _bad("'messages' must be an array of message objects.", "messages")
    if not messages:
        raise _bad("'messages' must contain at least one message.", "messages")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(f"{where} must be an object.", where)
        role = m.get("role")
        if role not in ROLES:
            raise _bad(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}.", where)
        content = m.get("content")
        if content is None and role == "assistant":
            continue
        if isinstance(content, list):
            for part in content:
                if not (isinstance(part, dict) and isinstance(part.get("text"), str)):
                    raise _bad(f"{where}.content parts must be text parts.", where)
        elif not isinstance(content, str):
            raise _bad(f"{where}.content must be a string or a list of text parts.", where)
    return messages


@dataclass(frozen=True)
class _ChatRequest:
    messages: list[dict[str, Any]]
    model: str | None
    stream: bool
    include_usage: bool
    max_tokens: int | None
    temperature: float
    seed: int | None
    stop: tuple[str, ...]


def _parse_chat(body: dict[str, Any], quirks: frozenset[str] = frozenset()) -> _ChatRequest:
    if "no-stream-options" in quirks and "stream_options" in body:
        # As a strict server (pydantic, extra fields forbidden) answers.
        raise ApiError(
            422, "stream_options: Extra inputs are not permitted", param="stream_options"
        )
    messages = _check_messages(body.get("messages"))
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string.", "model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean.", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object.", "stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _bad("'stream_options.include_usage' must be a boolean.", "stream_options")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens")
    if max_tokens is not None and not (_is_int(max_tokens) and max_tokens >= 1):
        raise _bad(f"'max_tokens' must be an integer >= 1, got {max_tokens!r}.", "max_tokens")
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 1.0
    if not (_is_number(temperature) and 0 <= temperature <= 2):
        raise _bad(
            f"'temperature' must be a number from 0 to 2, got {temperature!r}.", "temperature"
        )
    for name, low, high in (
        ("top_p", 0, 1),
        ("presence_penalty", -2, 2),
        ("frequency_penalty", -2, 2),
    ):
        value = body.get(name)
        if value is not None and not (_is_number(value) and low <= value <= high):
            raise _bad(f"'{name}' must be a number from {low} to {high}, got {value!r}.", name)
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise _bad(f"'seed' must be an integer, got {seed!r}.", "seed")
    n = body.get("n")
    if n is not None and n != 1:
        raise _bad("Only n=1 is supported by this server.", "n")
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not (
        isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) and s for s in stop)
    ):
        raise _bad("'stop' must be a non-empty string or a list of up to 4 of them.", "stop")
    return _ChatRequest(
        messages, model, stream, include_usage, max_tokens, float(temperature), seed, tuple(stop)
    )


def _check_template(messages: list[dict[str, Any]], quirks: frozenset[str], status: int) -> None:
    strict = "alternating-roles" in quirks
    if "no-system-role" in quirks or strict:
        if any(m["role"] in ("system", "developer") for m in messages):
            raise ApiError(status, TEMPLATE_ERROR, code="template_error")
    if strict:
        for i, m in enumerate(messages):
            expected = "user" if i % 2 == 0 else "assistant"
            if m["role"] != expected:
                raise ApiError(status, TEMPLATE_ERROR, code="template_error")


def _finish(text: str, max_tokens: int | None, stop: tuple[str, ...]) -> tuple[str, str]:
    """Apply max_tokens then stop sequences; return (text, finish_reason)."""
    reason = "stop"
    parts = pieces(text)
    # Reaching max_tokens is "length" even at a natural end: a real model would
    # have needed one more token (end-of-sequence) to stop by itself.
    if max_tokens is not None and len(parts) >= max_tokens:
        text = "".join(parts[:max_tokens])
        reason = "length"
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
        reason = "stop"
    return text, reason


class _Faults:
    """Seeded, thread-safe draws for fault injection."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def randrange(self, n: int) -> int:
        with self._lock:
            return self._rng.randrange(n)


def create_app(
    config: ServerConfig | Mapping[str, Any] | None = None,
    received: list[dict[str, Any]] | None = None,
) -> Flask:
    """Create the dummy server's Flask app; `received`, if given, gets the JSON body of every
    chat request, in arrival order (tests compare it with what a client meant to send)."""
    if config is None:
        config = ServerConfig()
    elif not isinstance(config, ServerConfig):
        config = ServerConfig.from_dict(config)
    cfg = config
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    generator = MarkovGenerator(cfg.corpus)
    faults = _Faults(cfg.seed)
    started = int(time.time())
    load = _Load()

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return _error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        if status == 404:
            message = f"Invalid URL ({request.method} {request.path})"
            type_ = "not_found_error"
        elif status == 405:
            message = f"Method {request.method} not allowed for {request.path}"
            type_ = "invalid_request_error"
        elif status == 413:
            message = f"Request body is larger than {MAX_BODY_BYTES} bytes."
            type_ = "invalid_request_error"
        else:
            message, type_ = err.description or err.name, "invalid_request_error"
        resp = _error_response(ApiError(status, message, type_))
        if status == 405 and err.get_response().headers.get("Allow"):
            resp.headers["Allow"] = err.get_response().headers["Allow"]
        return resp

    @app.errorhandler(Exception)
    def _crash(err: Exception) -> Response:
        app.logger.exception("internal error")
        return _error_response(ApiError(500, "Internal server error.", "server_error"))

    @app.before_request
    def _auth() -> None:
        load.asked(f"{request.method} {request.path}")
        if cfg.api_key is None or request.path == "/health":
            return
        if request.headers.get("Authorization", "") != f"Bearer {cfg.api_key}":
            # Never echo the key that was sent: it may be a real secret.
            raise ApiError(401, "Incorrect or missing API key.", code="invalid_api_key")

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/stats")
    def stats() -> Any:
        return load.snapshot()

    @app.get("/stats/paths")
    def stats_paths() -> Any:
        return load.paths()

    @app.get("/v1/models")
    def models() -> Any:
        entry = {
            "id": cfg.model,
            "object": "model",
            "created": started,
            "owned_by": "dummy_server",
            "max_model_len": cfg.context_window,
        }
        return {"object": "list", "data": [entry]}

    @app.post("/tokenize")
    def tokenize_route() -> Any:
        body = _read_json()
        if "messages" in body:
            text = render_chat(_check_messages(body["messages"]))
        elif isinstance(body.get("prompt"), str):
            text = body["prompt"]
        else:
            raise _bad("Send 'prompt' (a string) or 'messages' (an array).", "prompt")
        tokens = tokenize(text)
        return {
            "count": len(tokens),
            "max_model_len": cfg.context_window,
            "tokens": token_ids(tokens),
        }

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        load.enter()
        try:
            response = _chat()
        except BaseException:
            load.leave()
            raise
        if response.is_streamed:
            # Still in flight until the last chunk is sent.
            response.call_on_close(load.leave)
        else:
            load.leave()
        return response

    def _chat() -> Response:
        body = _read_json()
        if received is not None:
            received.append(body)
        req = _parse_chat(body, cfg.quirks)
        if cfg.fail_rate and faults.draw() < cfg.fail_rate:
            if faults.draw() < 0.5:
                raise ApiError(500, "Simulated server failure.", "server_error")
            seconds = max(1, math.ceil(cfg.retry_after_ms / 1000))
            raise ApiError(
                429,
                "Simulated rate limit; retry later.",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(seconds), "retry-after-ms": str(cfg.retry_after_ms)},
            )
        _check_template(req.messages, cfg.quirks, cfg.template_error_status)
        prompt_tokens = len(tokenize(render_chat(req.messages)))
        wanted = req.max_tokens or 0
        if prompt_tokens + wanted > cfg.context_window or prompt_tokens >= cfg.context_window:
            raise ApiError(
                400,
                f"This model's maximum context length is {cfg.context_window} tokens. "
                f"However, you requested {prompt_tokens + wanted} tokens ({prompt_tokens} in "
                f"the messages, {wanted} in the completion). Please reduce the length of the "
                "messages or completion.",
                param="messages",
                code="context_length_exceeded",
            )
        budget = req.max_tokens or cfg.context_window - prompt_tokens
        rng = _rng_for(req)
        texts = [message_text(m.get("content")) for m in req.messages]
        asked = wanted_schema(body.get("response_format")) if cfg.json_schema else None
        if asked is not None:
            value = from_schema(
                asked, rng, lambda: generator.generate(texts, rng, req.temperature, 12, False)
            )
            text, reason = json.dumps(value), "stop"
        else:
            raw = generator.generate(texts, rng, req.temperature, budget, "ramble" in cfg.quirks)
            text, reason = _finish(raw, budget, req.stop)
        meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": req.model or cfg.model,
        }
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokenize(text)),
            "total_tokens": prompt_tokens + len(tokenize(text)),
        }
        if req.stream:
            drop_at = None
            if cfg.drop_rate and faults.draw() < cfg.drop_rate:
                drop_at = faults.randrange(len(pieces(text)) + 1)
            stream = _sse(cfg, meta, text, reason, usage if req.include_usage else None, drop_at)
            return Response(
                stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        _pace(cfg, len(pieces(text)))
        reply = {
            **meta,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }
        return Response(json.dumps(reply), mimetype="application/json")

    return app


class _Load:
    """Chat requests in flight now, at most so far, and in all (GET /stats); every request
    by method and path (GET /stats/paths)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = self.peak = self.requests = 0
        self._paths: dict[str, int] = {}

    def asked(self, what: str) -> None:
        with self._lock:
            self._paths[what] = self._paths.get(what, 0) + 1

    def paths(self) -> dict[str, int]:
        with self._lock:
            return dict(self._paths)

    def enter(self) -> None:
        with self._lock:
            self.active += 1
            self.requests += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self._lock:
            self.active -= 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"active": self.active, "peak": self.peak, "requests": self.requests}


def _rng_for(req: _ChatRequest) -> random.Random:
    if req.seed is not None:
        return random.Random(req.seed)
    if req.temperature == 0:
        # Greedy decoding is deterministic on real servers; make ties and the
        # reply length deterministic too, from the request itself.
        digest = hashlib.sha256(json.dumps(req.messages, sort_keys=True).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))
    return random.Random()


def _pace(cfg: ServerConfig, n_tokens: int) -> None:
    delay = cfg.latency_ms / 1000
    if cfg.tokens_per_second:
        delay += n_tokens / cfg.tokens_per_second
    if delay:
        time.sleep(delay)


def _sse(
    cfg: ServerConfig,
    meta: dict[str, Any],
    text: str,
    reason: str,
    usage: dict[str, int] | None,
    drop_at: int | None,
) -> Iterator[str]:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {**meta, "object": "chat.completion.chunk", "choices": choices, **extra}
        return f"data: {json.dumps(payload)}\n\n"

    step = 1 / cfg.tokens_per_second if cfg.tokens_per_second else 0.0
    if cfg.latency_ms:
        time.sleep(cfg.latency_ms / 1000)
    parts = pieces(text)
    if drop_at == 0:
        return  # like llama-cpp-python failing mid-request: HTTP 200, empty body
    yield chunk(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for i, part in enumerate(parts):
        if drop_at is not None and i + 1 >= drop_at:
            return  # the stream just stops: no finish_reason, no [DONE]
        if step and i:
            time.sleep(step)
        yield chunk([{"index": 0, "delta": {"content": part}, "finish_reason": None}])
    yield chunk([{"index": 0, "delta": {}, "finish_reason": reason}])
    if usage is not None:
        yield chunk([], usage=usage)
    yield "data: [DONE]\n\n"
