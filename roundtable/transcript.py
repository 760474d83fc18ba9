"""Transcript records: the JSONL file written turn by turn, and reading it back."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from .errors import InputError

PHASES = ("discussion", "wrap_up", "summary")


@dataclass(frozen=True)
class Turn:
    """One model turn, as stored in transcript.jsonl."""

    index: int
    speaker: str
    phase: str
    topic: str | None
    text: str
    temperature: float
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str
    tokens_source: str = "usage"
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record for this turn."""
        return {"type": "turn", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        """Read a turn record, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known - {"type"}
        if extra:
            raise ValueError(f"unknown turn keys: {sorted(extra)}")
        return cls(**{k: v for k, v in data.items() if k != "type"})


class TranscriptWriter:
    """Appends records to transcript.jsonl; each line is on disk before the next turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(path)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def run(self, info: dict[str, Any]) -> None:
        """The first line: settings (no secrets), participants, questions."""
        self._append({"type": "run", **info})

    def resume(self, turns_done: int, models: dict[str, str]) -> None:
        """Marks where a resumed run picked up (earlier lines stay as they were)."""
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._append({"type": "resume", "started": started, "turns_done": turns_done,
                      "models": models})  # fmt: skip

    def turn(self, turn: Turn) -> None:
        """One finished turn."""
        self._append(turn.to_dict())

    def end(self, status: str, **extra: Any) -> None:
        """The last line: how the run ended."""
        self._append({"type": "end", "status": status, **extra})

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _drop_torn_tail(path: Path) -> None:
    # A crash mid-write can leave a partial last line; appending after it would glue
    # the next record onto it. Cut the file back to its last complete line.
    if not path.exists():
        return
    with path.open("rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def read_records(path: Path) -> list[dict[str, Any]]:
    """All complete records of a transcript; a torn last line (a crash) is ignored."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: transcript not found") from None
    records = []
    lines = raw.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # the last line, cut short by a crash
                break
            raise InputError(f"{path}: line {number} is not valid JSON") from None
    return records
