"""Following a transcript as it is written, as server-sent events.

The file is tailed from a byte offset: each poll reads only what was appended since,
and a line still being written waits for its newline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .model import Builder, read_lines
from .render import TRANSCRIPT, lock_alive, render_item

POLL_S = 0.1  # how often the file's size is checked: the push delay is at most this
KEEPALIVE_S = 15.0  # a comment line keeps proxies and the browser from timing out


def _event(kind: str, data: dict[str, Any], offset: int) -> str:
    # One JSON line per event: the data never holds a raw newline.
    return f"id: {offset}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


def _builder_at(path: Path, offset: int) -> tuple[Builder, int]:
    """A builder that has seen the records before `offset` (read once, at connection)."""
    builder = Builder()
    if offset <= 0:
        return builder, 0
    # An offset inside a line falls back to that line's start.
    lines, end = read_lines(path, 0, end=offset)
    for record, _ in lines:
        builder.feed(record)
    return builder, end


def follow(
    run_dir: Path,
    offset: int,
    *,
    poll_s: float = POLL_S,
    idle_timeout_s: float | None = 5.0,
    clock: Any = time.monotonic,
    sleep: Any = time.sleep,
) -> Iterator[str]:
    """SSE text for each record appended after `offset`, until the run's end line (or,
    once the writer is gone, until `idle_timeout_s` passes with nothing new)."""
    path = run_dir / TRANSCRIPT
    builder, offset = _builder_at(path, offset)
    last_news = last_sent = clock()
    yield "retry: 1000\n\n"
    if builder.end is not None:  # it had ended before the page asked
        yield _event("end", {"status": str(builder.end.get("status"))}, offset)
        return
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # moved away mid-run: wait for it to come back
            size = 0
        if size < offset:  # the file was cut back (a torn tail dropped): start that line again
            offset = size
        if size > offset:
            lines, complete = read_lines(path, offset)
            for record, offset in lines:
                turns = builder.turns
                items = [
                    {"html": render_item(p.item), "before": p.before, "id": p.item.id}
                    for p in builder.feed(record)
                ]
                if items:
                    data = {"items": items, "turns": builder.turns, "tokens": builder.tokens,
                            "new_turn": builder.turns > turns}  # fmt: skip
                    yield _event("items", data, offset)
                if builder.end is not None:
                    yield _event("end", {"status": str(builder.end.get("status"))}, offset)
                    return
                last_news = last_sent = clock()
            offset = complete  # past blank or corrupt lines too
        now = clock()
        if idle_timeout_s is not None and now - last_news > idle_timeout_s:
            if not lock_alive(run_dir):
                yield _event("end", {"status": "stopped"}, offset)
                return
            last_news = now
        if now - last_sent >= KEEPALIVE_S:
            last_sent = now
            yield ": keep-alive\n\n"
        sleep(poll_s)
