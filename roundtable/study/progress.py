"""Progress of a study: a tqdm bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

LINE_EVERY_S = 10.0  # how often a plain progress line is written when not a terminal


class Progress:
    """Runs done/total, turns/s, tokens/s, failures and ETA; safe to feed from any thread."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self.total = self.done = self.failed = self.turns = self.tokens_out = 0
        self._skipped = 0
        self._started = time.perf_counter()
        self._last_line = 0.0
        self._bar: Any = None

    def start(self, total: int, done: int, resume: int = 0, retry: int = 0) -> None:
        """The study starts with `done` of `total` runs already complete, `resume` of the
        others interrupted before (they carry on where they stopped) and `retry` failed."""
        self.total, self.done, self._skipped = total, done, done
        self._started = self._last_line = time.perf_counter()
        if not self.enabled:
            return
        if done == total:
            self.write(f"roundtable: study: nothing to do: all {total} runs complete")
            return
        retrying = f"{retry} to retry, " if retry else ""
        self.write(
            f"roundtable: study: {total} runs: {done} already complete, {resume} to resume, "
            f"{retrying}{total - done - resume - retry} to start"
        )
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=done,
                unit="run",
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def turn(self) -> None:
        """A turn finished somewhere."""
        with self._lock:
            self.turns += 1

    def tokens(self, n: int) -> None:
        """Completion tokens of a turn that ended."""
        with self._lock:
            self.tokens_out += n

    def finished(self, status: str) -> None:
        """A run ended (completed or failed)."""
        with self._lock:
            self.done += 1
            self.failed += status == "failed"

    def summary(self) -> str:
        """The figures, as one line."""
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        ran = self.done - self._skipped
        left = self.total - self.done
        eta = f"{left * elapsed / ran:.0f} s" if ran else "?"
        return (
            f"{self.done}/{self.total} runs, {self.turns / elapsed:.1f} turns/s, "
            f"{self.tokens_out / elapsed:.0f} tokens/s, {self.failed} failed, ETA {eta}"
        )

    def tick(self) -> None:
        """Refresh the bar, or write a line when one is due (called from the main thread)."""
        if self._bar is not None:
            self._bar.n = self.done
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            self._bar.set_postfix_str(
                f"{self.turns / elapsed:.1f} turns/s, "
                f"{self.tokens_out / elapsed:.0f} tok/s, "
                f"{self.failed} failed",
                refresh=True,
            )
        elif self.enabled and time.perf_counter() - self._last_line >= LINE_EVERY_S:
            self._last_line = time.perf_counter()
            self.write(f"roundtable: study: {self.summary()}")

    def write(self, text: str) -> None:
        """A line for the user (above the bar, if there is one)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """The last figures."""
        if self._bar is not None:
            self.tick()
            self._bar.close()
            self._bar = None
        if self.enabled and (self.done > self._skipped or self.turns):
            self.write(f"roundtable: study: {self.summary()}")  # unless nothing ran
