"""Synthetic run directories for the viewer's tests (records as roundtable writes them)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HOSTILE = (
    '<script>window.__pwned = "script"</script>',
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "[click me](javascript:window.__pwned='link') <a href=\"javascript:window.__pwned='a'\">a</a>",
    "![x](x\" onerror=\"window.__pwned='md') **bold** `code` <svg onload=\"window.__pwned='svg'\">",
)

PEOPLE = [
    {"name": "Amara", "full_name": "Amara Okafor, urban planner", "color": None},
    {"name": "Ben", "full_name": "Ben Hartley, economist", "color": None},
    {"name": "Chen", "full_name": "Chen Wei, nurse", "color": "bright_green"},
]


def run_record(people: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The first line of a transcript."""
    return {
        "type": "run",
        "started": "2026-11-20T10:00:00+00:00",
        "model": "markov-dummy",
        "offline": True,
        "settings": {"seed": 7},
        "participants": people or PEOPLE,
        "questions": ["Who pays?", "What first?"],
    }


def turn(index: int, speaker: str, text: str, topic: str | None = "Who pays?", **extra: Any):
    """A turn record."""
    record = {
        "type": "turn", "index": index, "speaker": speaker, "phase": "discussion",
        "topic": topic, "text": text, "temperature": 0.7, "prompt_tokens": 100 + index,
        "completion_tokens": 20, "latency_s": 0.25, "finish_reason": "stop",
        "tokens_source": "usage", "model": "markov-dummy", "attempts": 1, "guards": [],
        "seed": 11, "chosen_by": "draw", "selection": None,
    }  # fmt: skip
    record.update(extra)
    return record


def moderator(text: str) -> dict[str, Any]:
    """A moderator line."""
    return {"type": "entry", "kind": "moderator", "speaker": "Moderator", "text": text}


def write_run(directory: Path, records: list[dict[str, Any]], *, lock_pid: int | None = None):
    """A run directory with these records; a .lock naming `lock_pid` (a live writer)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (directory / "transcript.jsonl").write_text(lines, encoding="utf-8")
    if lock_pid is not None:
        (directory / ".lock").write_text(str(lock_pid))
    return directory


def append(directory: Path, record: dict[str, Any]) -> None:
    """Append one record, flushed, as the writer does."""
    with (directory / "transcript.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def long_run(directory: Path, turns: int, *, end: bool = True) -> Path:
    """A run with `turns` turns, a moderator line and a new topic every 10."""
    records: list[dict[str, Any]] = [run_record()]
    names = [p["name"] for p in PEOPLE]
    for i in range(turns):
        if i % 10 == 0:
            records.append(moderator(f"Question {i // 10}: what now?"))
        text = f"Turn {i}: " + "a fairly ordinary sentence about heat and cost. " * 6
        records.append(turn(i, names[i % len(names)], text, topic=f"Question {i // 10}"))
    if end:
        records.append({"type": "end", "status": "completed"})
    return write_run(directory, records)
