"""A study's results: study.json and answers.json per run; runs.csv and answers.csv.

Each run directory keeps its own record (study.json) and answers (answers.json), written
when they change; the CSV files are appended to as runs finish and rebuilt from the run
directories at the start of every invocation (and by `roundtable report`), so a crash
loses nothing and a run retried later has one row.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..metrics import compute_records
from ..transcript import read_records

RUN_FILE = "study.json"
ANSWERS_FILE = "answers.json"
BASE_COLUMNS = (
    "id",
    "seed",
    "endpoint",
    "model",
    "status",
    "turns",
    "prompt_tokens",
    "completion_tokens",
    "seconds",
    "error",
)
# Every figure `roundtable metrics` reports, after the run's own columns.
_EMPTY_RUN = [{"type": "run", "settings": {}, "participants": [], "questions": []}]
METRIC_COLUMNS = tuple(k for k in compute_records(_EMPTY_RUN) if k not in BASE_COLUMNS)
ANSWER_COLUMNS = (
    "run",
    "seed",
    "persona",
    "item",
    "kind",
    "when",
    "answer",
    "answer_index",
    "missing",
    "structured",
    "shown_order",
    "persona_full_name",
    "persona_creativity",
    "persona_talkativeness",
    "persona_model",
)


def _lines(data: Any) -> str:
    """JSON with each key of a mapping (each item of a list) on a line of its own: readable,
    and written by json's C encoder, which `indent` would turn off."""
    if isinstance(data, dict) and data:
        items = (f" {json.dumps(str(k))}: {json.dumps(v, default=str)}" for k, v in data.items())
        return "{\n" + ",\n".join(items) + "\n}\n"
    if isinstance(data, list) and data:
        return "[\n" + ",\n".join(" " + json.dumps(v, default=str) for v in data) + "\n]\n"
    return json.dumps(data, default=str) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a crash leaves the old file or the new one, never half)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(_lines(data), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, default: Any) -> Any:
    """A JSON file's data, or default when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else value


def run_row(
    record: dict[str, Any],
    run_dir: Path,
    factors: Sequence[str],
    records: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A runs.csv row: the run's record, its condition, and its metrics when it has a
    transcript (`records`: its records, if already read)."""
    row = {k: record.get(k) for k in BASE_COLUMNS}
    condition = record.get("condition") or {}
    row.update({f: condition.get(f) for f in factors})
    jsonl = run_dir / "transcript.jsonl"
    if records is None and jsonl.is_file():
        records = read_records(jsonl)
    if records:
        figures = compute_records(records)
        row.update({k: figures.get(k) for k in METRIC_COLUMNS})
    return row


class Results:
    """The study's CSV files, appended to by worker threads as runs finish."""

    def __init__(self, out: Path, factors: Sequence[str]) -> None:
        self.out = out
        self.factors = tuple(factors)
        self.run_columns = (*BASE_COLUMNS[:1], *self.factors, *BASE_COLUMNS[1:], *METRIC_COLUMNS)
        self.answer_columns = (*ANSWER_COLUMNS[:1], *self.factors, *ANSWER_COLUMNS[1:])
        self._lock = threading.Lock()

    @property
    def runs_csv(self) -> Path:
        """One row per run."""
        return self.out / "runs.csv"

    @property
    def answers_csv(self) -> Path:
        """One row per (run, persona, item, when)."""
        return self.out / "answers.csv"

    def _write(
        self, path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]], mode: str
    ) -> None:
        new = mode == "w" or not path.exists()
        with path.open(mode, encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            if new:
                writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in columns})

    def rebuild(self, leave_out: Collection[str] = ()) -> tuple[int, int]:
        """Rewrite both files from the run directories (but the runs in leave_out, which
        are about to run and add their rows); returns (runs, answers) written."""
        runs, answers = [], []
        for run_dir in sorted((self.out / "runs").glob("*/")):
            record = read_json(run_dir / RUN_FILE, None)
            if not isinstance(record, dict) or record.get("id") in leave_out:
                continue
            runs.append(run_row(record, run_dir, self.factors))
            answers.extend(self.answer_rows(record, run_dir))
        with self._lock:
            self._write(self.runs_csv, self.run_columns, runs, "w")
            self._write(self.answers_csv, self.answer_columns, answers, "w")
        return len(runs), len(answers)

    def answer_rows(self, record: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
        """The answers.csv rows of one run."""
        condition = record.get("condition") or {}
        rows = read_json(run_dir / ANSWERS_FILE, [])
        return [{**row, **{f: condition.get(f) for f in self.factors}} for row in rows]

    def finished(
        self,
        record: dict[str, Any],
        run_dir: Path,
        records: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Append a finished (or failed) run's rows (`records`: its transcript's, if read)."""
        row = run_row(record, run_dir, self.factors, records)
        answers = self.answer_rows(record, run_dir) if record.get("status") == "completed" else []
        with self._lock:
            self._write(self.runs_csv, self.run_columns, [row], "a")
            if answers:
                self._write(self.answers_csv, self.answer_columns, answers, "a")


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows (InputError naming the file when it is missing)."""
    if not path.is_file():
        raise InputError(f"{path}: not found; pass a study directory (it holds runs/)")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
