"""What to do about a failed request: a pure function of what the server answered."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RETRY_AFTER_S = 60.0  # a server asking for longer is capped: the user sees the wait

# Actions, in the order a request's failure is looked at.
CHANGE_LAYOUT = "change_layout"  # the chat template rejected the message layout
DROP_STREAM_OPTIONS = "drop_stream_options"  # a strict server refused stream_options
CONTEXT_FULL = "context_full"  # prompt plus max_tokens do not fit the model's context
RETRY = "retry"  # may pass next time: back off and ask again
WAIT = "wait"  # may pass next time, after the seconds the server asked for
GIVE_UP = "give_up"  # asking again cannot help

_TEMPLATE_ERRORS = re.compile(
    r"roles must alternate|system role not supported|only user and assistant roles|"
    r"jinja|template[ _]error|chat template",
    re.IGNORECASE,
)
_CONTEXT_ERRORS = re.compile(
    r"context_length_exceeded|exceed_context_size|maximum context length|context length|"
    r"context window|exceeds? the available context|too many tokens",
    re.IGNORECASE,
)
_CONTEXT_LIMIT = re.compile(
    r"maximum context length is (\d+)|context window of (\d+)|n_ctx[\"': =]+(\d+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Endpoint:
    """What error messages say about the endpoint: where it is and which key it was sent."""

    where: str  # the base URL, safe to print
    key_env: str  # the environment variable the API key was read from


@dataclass(frozen=True)
class Action:
    """The decision about one failed request, with the words to use if it ends the run."""

    kind: str
    problem: str  # e.g. "HTTP 500", "unreachable"
    detail: str = ""  # what the server or the network said
    fix: str = ""  # what the user can do
    status: int | None = None
    seconds: float | None = None  # WAIT: how long the server asked for
    limit: int | None = None  # CONTEXT_FULL: the context size, when the error names it
    resumable: bool = True  # False when the cause is configuration, not the moment

    def text(self, where: str, attempts: int = 1) -> str:
        """The one-line error for the user."""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        detail = f" ({self.detail})" if self.detail else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{where}: {self.problem}{after}{detail}{fix}"


def is_template_error(status: int | None, message: str) -> bool:
    """True for a chat-template rejection (vLLM 400, TGI 422, llama.cpp 500)."""
    return status in (400, 422, 500) and bool(_TEMPLATE_ERRORS.search(message))


def is_context_error(status: int | None, message: str) -> bool:
    """True when the prompt plus max_tokens did not fit the model's context."""
    return status in (400, 413, 422) and bool(_CONTEXT_ERRORS.search(message))


def context_limit(message: str) -> int | None:
    """The context size a context error names, if it names one."""
    match = _CONTEXT_LIMIT.search(message)
    if not match:
        return None
    return int(next(g for g in match.groups() if g))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asked to wait (retry-after-ms, else Retry-After), capped."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(lowered[name]) / scale
        except (KeyError, ValueError):
            continue  # absent, or an HTTP date: our own backoff will do
        if seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    return None


def classify(status: int, message: str, headers: Mapping[str, str], endpoint: Endpoint) -> Action:
    """Decide what to do about an HTTP error answer."""
    http = f"HTTP {status}"
    if is_template_error(status, message):
        return Action(
            CHANGE_LAYOUT,
            "the server's chat template rejected the messages",
            message,
            "try --compat no-system or --compat alternating",
            status,
            resumable=False,
        )
    if status in (400, 422) and "stream_options" in message:
        return Action(DROP_STREAM_OPTIONS, http, message, status=status, resumable=False)
    if is_context_error(status, message):
        return Action(CONTEXT_FULL, http, message, status=status, limit=context_limit(message))
    if status == 401:
        return Action(
            GIVE_UP,
            "the server rejected the API key (401)",
            fix=f"set {endpoint.key_env} to a key this server accepts",
            status=status,
            resumable=False,
        )
    if status == 403:
        return Action(
            GIVE_UP,
            "forbidden (HTTP 403)",
            message,
            f"check that the key in {endpoint.key_env} may use this model",
            status,
            resumable=False,
        )
    if status == 404:
        path = urlsplit(endpoint.where).path.rstrip("/")
        fix = "check the model name and the base URL"
        if not path.endswith("/v1"):
            fix = f"OpenAI-compatible servers answer under /v1: try {endpoint.where.rstrip('/')}/v1"
        return Action(GIVE_UP, "not found (HTTP 404)", message, fix, status, resumable=False)
    if status in (408, 409, 429) or status >= 500:
        seconds = retry_after(headers)
        kind = RETRY if seconds is None else WAIT
        return Action(kind, http, message, status=status, seconds=seconds)
    return Action(
        GIVE_UP,
        f"the server refused the request ({http})",
        message,
        "check the model and the sampling settings (top_p, penalties, extra_body)",
        status,
        resumable=False,
    )


def classify_failure(kind: str, detail: str, endpoint: Endpoint) -> Action:
    """Decide what to do when no usable answer came (kind: connect, timeout, tls, garbled)."""
    if kind == "tls":
        plain = endpoint.where.replace("https://", "http://", 1)
        return Action(
            GIVE_UP,
            "the TLS (https) handshake failed",
            detail,
            f"the server may speak plain HTTP: try {plain}",
            resumable=False,
        )
    if kind == "timeout":
        return Action(
            RETRY, "no answer within the timeout", fix="raise --timeout or check the server"
        )
    if kind == "garbled":
        problem = "an answer that is not a chat completion"
        return Action(RETRY, problem, detail, "check the base URL")
    return Action(RETRY, "unreachable", detail, "start the server or check the base URL")
