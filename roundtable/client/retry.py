"""The one retry loop: ask, classify a failure, then wait, re-ask, or stop with the fix."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import ServerError
from .classify import (
    CHANGE_LAYOUT,
    CONTEXT_FULL,
    DROP_STREAM_OPTIONS,
    GIVE_UP,
    WAIT,
    Action,
    Endpoint,
    classify,
    classify_failure,
)
from .transport import ConnectionFailure, IncompleteStream, StatusError

T = TypeVar("T")
MAX_BACKOFF_S = 8.0
# Re-asks that are not failures (a stricter layout, no stream_options) have their own
# budget: two layout steps and one stream_options drop at most.
REASK_LIMIT = 3


class ContextOverflow(Exception):
    """The server said the prompt plus max_tokens does not fit its context."""

    def __init__(self, limit: int | None, message: str, requests: int = 1) -> None:
        super().__init__(message)
        self.limit = limit
        self.requests = requests


class Retrier:
    """Runs requests to one endpoint, retrying what may pass and explaining what cannot."""

    def __init__(
        self,
        endpoint: Endpoint,
        retries: int,
        retry_wait: float,
        *,
        notice: Callable[[str], None] | None = None,
        debug: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.retries = retries
        self.retry_wait = retry_wait
        self._notice = notice or (lambda text: None)
        self._debug = debug or (lambda text: None)
        self._sleep = sleep
        self._rng = random.Random()

    def backoff(self, failures: int) -> float:
        """Seconds before retry number `failures`: doubling from retry_wait, with jitter."""
        base = min(self.retry_wait * 2 ** (failures - 1), MAX_BACKOFF_S)
        return base * self._rng.uniform(0.75, 1.25)

    def run(
        self, send: Callable[[], T], adapt: Callable[[Action], bool] | None = None
    ) -> tuple[T, int]:
        """Call `send` until it answers; return the answer and the HTTP requests it took.

        `adapt` is offered CHANGE_LAYOUT and DROP_STREAM_OPTIONS and says whether it
        changed the request; then the request is sent again without counting a failure.
        """
        where = self.endpoint.where
        requests = failures = reasks = 0
        while True:
            requests += 1
            started = time.monotonic()
            try:
                return send(), requests
            except StatusError as exc:
                action = classify(exc.status, exc.message, exc.headers, self.endpoint)
            except ConnectionFailure as exc:
                action = classify_failure(exc.kind, exc.detail, self.endpoint)
            except IncompleteStream as exc:
                exc.requests = requests
                raise
            if action.kind in (CHANGE_LAYOUT, DROP_STREAM_OPTIONS):
                if reasks < REASK_LIMIT and adapt is not None and adapt(action):
                    reasks += 1
                    self._debug(f"roundtable: {where}: {action.problem}; asking again at once")
                    continue
                raise ServerError(action.text(where), resumable=action.resumable) from None
            if action.kind == CONTEXT_FULL:
                raise ContextOverflow(action.limit, action.detail, requests) from None
            if action.kind == GIVE_UP:
                raise ServerError(action.text(where), resumable=action.resumable) from None
            failures += 1
            if failures > self.retries:
                text = action.text(where, failures)
                raise ServerError(text, resumable=action.resumable) from None
            wait = action.seconds if action.kind == WAIT and action.seconds is not None else None
            if wait is not None and wait >= 1:
                self._notice(
                    f"roundtable: {where} asked to wait {wait:g} s (HTTP {action.status}); waiting"
                )
            if wait is None:
                wait = self.backoff(failures)
            said = f" ({action.detail})" if action.detail else ""
            line = (
                f"roundtable: {where}: {action.problem}{said}; retry {failures} of "
                f"{self.retries} in {wait:.2f} s"
            )
            # Quick retries stay quiet (-v shows them); a slow one is said, so a server
            # that does not answer is never a long silence.
            slow = wait >= 1 or time.monotonic() - started >= 1
            (self._notice if slow and action.kind != WAIT else self._debug)(line)
            self._sleep(wait)
