"""Transcript records: the JSONL file written turn by turn, reading it back, and the run
directory's lock."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import dataclass, fields
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
    attempts: int = 1  # model requests for this turn, re-asks included
    guards: tuple[str, ...] = ()  # why it was asked again or cut: empty, stream_dropped, ...
    seed: int | None = None  # the sampling seed of the accepted attempt
    # Token counts of the shared-transcript entries this turn added (moderator lines
    # before it, the opening before turn 0, its own reply last), so a resume needs no
    # tokenizer; a None in it is an entry not counted yet (budget.py counts entries only
    # near the window). None in transcripts written before they were recorded.
    entry_tokens: tuple[int | None, ...] | None = None
    # How the speaker was chosen (speakers.py: addressed, draw, invited, llm, ...) and,
    # under speaker_selection llm, the selector's valid answer (None: it gave none), which a
    # resume hands the moderator again instead of asking.
    chosen_by: str = ""
    selection: str | None = None
    # A person's turn (human.py), and whom they handed the floor to with /ask, which a
    # resume hands the moderator again. Left out of model turns' records.
    human: bool = False
    handoff: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record for this turn."""
        # Not asdict(): it copies deeply, field by field; every value here is flat.
        record: dict[str, Any] = {"type": "turn"}
        record.update((name, getattr(self, name)) for name in _TURN_FIELDS)
        if not self.human:
            del record["human"], record["handoff"]
        record["guards"] = list(self.guards)
        if self.entry_tokens is not None:
            record["entry_tokens"] = list(self.entry_tokens)
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        """Read a turn record, rejecting unknown keys (older records lack the newer ones)."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known - {"type"}
        if extra:
            raise ValueError(f"unknown turn keys: {sorted(extra)}")
        values = {k: v for k, v in data.items() if k != "type"}
        values["guards"] = tuple(values.get("guards") or ())
        if values.get("entry_tokens") is not None:
            values["entry_tokens"] = tuple(values["entry_tokens"])
        return cls(**values)


_TURN_FIELDS = tuple(f.name for f in fields(Turn))


class TranscriptWriter:
    """Appends records to transcript.jsonl; each line is on disk before the next turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(path)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """Write a line; it is in the OS's hands at once, and on disk with `sync` (an
        unsynced line reaches the disk with the next synced one, the next turn's)."""
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def run(self, info: dict[str, Any]) -> None:
        """The first line: settings (no secrets), participants, questions."""
        self._append({"type": "run", **info})

    def resume(self, turns_done: int, models: dict[str, str], base_url: str) -> None:
        """Marks where a resumed run picked up (earlier lines stay as they were);
        `base_url` is the endpoint used from here on, credentials masked."""
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._append({"type": "resume", "started": started, "turns_done": turns_done,
                      "models": models, "base_url": base_url})  # fmt: skip

    def turn(self, turn: Turn) -> None:
        """One finished turn."""
        self._append(turn.to_dict())

    def event(self, record: dict[str, Any]) -> None:
        """Another record (a moderator line, a fold), written where it happened. Not
        fsynced on its own: a replay rebuilds these from the turns, and the next turn's
        record syncs them along (an fsync is ~60 us of CPU; a study writes ~1 of these
        per turn)."""
        self._append(record, sync=False)

    def end(self, status: str, **extra: Any) -> None:
        """The last line: how the run ended."""
        self._append({"type": "end", "status": status, **extra})

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class RunLock:
    """An exclusive lock on a run directory, so two roundtables never append to one run."""

    def __init__(self, directory: Path) -> None:
        """Create the directory if needed and lock it; InputError if another process holds it."""
        self.directory = directory
        self._created = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file = (directory / ".lock").open("a+", encoding="utf-8")
        except FileExistsError:
            raise InputError(
                f"{directory}: cannot create the run directory: a file is in the way; choose "
                "another --out (or move that file)"
            ) from None
        except NotADirectoryError:
            raise InputError(
                f"{directory}: cannot create the run directory: part of the path is a file; "
                "choose another --out"
            ) from None
        except OSError as exc:
            raise InputError(
                f"{directory}: cannot create the run directory ({exc.strerror or exc}); "
                "choose another --out"
            ) from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "?"
            self._file.close()
            raise InputError(f"{directory}: in use by another roundtable (pid {holder})") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        """Unlock; a directory this lock created and nothing else used is removed again."""
        if self._file.closed:
            return
        lock = self.directory / ".lock"
        if self._created and [p.name for p in self.directory.iterdir()] == [".lock"]:
            lock.unlink()  # a run that failed before its first record leaves nothing behind
            self.directory.rmdir()
        # Otherwise the file stays: removing it would race with the next locker.
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
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
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the last line, cut short by a crash
                break
            raise InputError(f"{path}: line {number} is not valid JSON") from None
        if not isinstance(record, dict):  # every reader takes a record to be an object
            raise InputError(f"{path}: line {number} is not a JSON object (a record)")
        records.append(record)
    return records
