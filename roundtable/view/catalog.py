"""What the viewer may serve: the runs and studies under its root directory, found
without following links out of it, and summarised for the index and study pages."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import Builder, read_from
from .render import TRANSCRIPT, status_of

MAX_DEPTH = 4  # root/studies/<name>/runs/<id> is as deep as roundtable writes
CHARTS = ("metrics.png", "questionnaire.png")


def contained(root: Path, rel: str) -> Path | None:
    """root/rel resolved, if it stays inside root (after links, `..` and absolute parts)."""
    if "\x00" in rel:
        return None
    base = root.resolve()
    try:
        target = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return target if target == base or target.is_relative_to(base) else None


def inside(root: Path, path: Path) -> bool:
    """Does `path` exist and, after every link, lead to something inside `root`?"""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return target.is_relative_to(root.resolve())


def run_dir(root: Path, rel: str) -> Path | None:
    """The run directory root/rel, if it is one and its transcript is inside root too."""
    target = contained(root, rel)
    if target is None or not (target / TRANSCRIPT).is_file():
        return None
    if contained(root, str(target.relative_to(root.resolve()) / TRANSCRIPT)) is None:
        return None  # the transcript is a link out of root
    return target


def is_study(path: Path) -> bool:
    """A study directory: runs/ and its study.json or runs.csv."""
    return (path / "runs").is_dir() and (
        (path / "study.json").is_file() or (path / "runs.csv").is_file()
    )


def study_dir(root: Path, rel: str) -> Path | None:
    """The study directory root/rel, if it is one inside root."""
    target = contained(root, rel)
    return target if target is not None and is_study(target) else None


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """(directory, kind) for runs and studies under root; links are not followed."""
    base = root.resolve()
    for top, dirs, files in os.walk(base, followlinks=False):
        here = Path(top)
        depth = len(here.relative_to(base).parts)
        if TRANSCRIPT in files and not (here / TRANSCRIPT).is_symlink():
            yield here, "run"
            dirs.clear()
        elif is_study(here):
            yield here, "study"
            dirs.clear()  # its runs are listed on its page
        elif depth >= MAX_DEPTH:
            dirs.clear()
        dirs.sort()


@dataclass(frozen=True)
class RunSummary:
    """A run as the index lists it."""

    rel: str
    name: str
    started: str
    status: str
    turns: int
    model: str
    tokens: int
    topic: str


class Catalog:
    """Runs and studies under a root; run summaries and study.json files cached by file size
    and time. Every file it reads is checked to lead (through any links) inside the root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, tuple[tuple[int, int], RunSummary]] = {}
        self._json_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def inside(self, path: Path) -> bool:
        """May the viewer read this file: does it exist and lead inside the root?"""
        return inside(self.root, path)

    def read_json(self, path: Path) -> dict[str, Any]:
        """A JSON object file inside root ({} if not one), re-read only when it changed."""
        if not self.inside(path):
            return {}
        try:
            stat = path.stat()
        except OSError:
            return {}
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._json_cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        data = _read_json(path)
        with self._lock:
            self._json_cache[path] = (key, data)
        return data

    def rel(self, path: Path) -> str:
        """A path under root as the URL part that names it."""
        return path.relative_to(self.root).as_posix() or "."

    def summary(self, path: Path) -> RunSummary:
        """Status, turns, model and tokens of one run (re-read only when it changed)."""
        stat = (path / TRANSCRIPT).stat()
        key = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached[0] == key:
            if cached[1].status not in ("running", "stopped"):
                return cached[1]
            # Unchanged but unfinished: only whether its writer still lives may differ.
            return dataclasses.replace(cached[1], status=status_of(path, None))
        records, _ = read_from(path / TRANSCRIPT)
        builder = Builder()
        for record in records:
            builder.feed(record)
        run = builder.run
        started = str(run.get("started") or _mtime(stat.st_mtime))
        questions = run.get("questions") or [""]
        summary = RunSummary(
            rel=self.rel(path),
            name=path.name,
            started=started,
            status=status_of(path, builder.end),
            turns=builder.turns,
            model=str(run.get("model") or "?"),
            tokens=builder.tokens,
            topic=str(questions[0]),
        )
        with self._lock:
            self._cache[path] = (key, summary)
        return summary

    def index(self) -> tuple[list[RunSummary], list[dict[str, Any]]]:
        """Runs and studies under root, newest first."""
        runs, studies = [], []
        for path, kind in _walk(self.root):
            if kind == "run":
                runs.append(self.summary(path))
            else:
                studies.append(self.study(path, with_rows=False))
        runs.sort(key=lambda r: r.started, reverse=True)
        studies.sort(key=lambda s: str(s["started"]), reverse=True)
        return runs, studies

    def study(self, path: Path, with_rows: bool = True) -> dict[str, Any]:
        """A study's conditions, progress, runs.csv rows, charts and runs."""
        info = self.read_json(path / "study.json")
        factors = info["factors"] if isinstance(info.get("factors"), dict) else {}
        csv_file, report = path / "runs.csv", path / "report.md"
        header, rows = _csv(csv_file) if with_rows and self.inside(csv_file) else ([], [])
        runs = sorted(p for p in (path / "runs").iterdir() if self._has_run(p))
        done = sum(1 for p in runs if self._run_status(p) in ("completed", "failed"))
        total = info["runs"] if isinstance(info.get("runs"), int) else len(runs)
        stat = (path / "runs").stat()
        return {
            "rel": self.rel(path),
            "name": str(info.get("name") or path.name),
            "started": _mtime(stat.st_mtime),
            "factors": {str(k): [str(v) for v in vs] for k, vs in factors.items()},
            "seeds": info.get("seeds") or [],
            "total": max(total, len(runs)),
            "done": done,
            "header": header,
            "rows": rows,
            "runs": {p.name: self.rel(p) for p in runs} if with_rows else {},
            "charts": [c for c in CHARTS if self.inside(path / c) and (path / c).is_file()],
            "report": _text(report) if with_rows and self.inside(report) else "",
        }

    def _has_run(self, path: Path) -> bool:
        return self.inside(path / TRANSCRIPT) and (path / TRANSCRIPT).is_file()

    def _run_status(self, path: Path) -> str:
        return str(self.read_json(path / "study.json").get("status") or "")


def _mtime(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return [], []
    return (rows[0], [r for r in rows[1:] if r]) if rows else ([], [])
