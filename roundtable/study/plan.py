"""The runs of a study: factors x seeds, each with a stable id, and its table."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..human import has_human
from ..personas import load_personas
from ..prompts import Prompts
from ..table import Table, load_table
from ..task import load_task
from .provenance import made_with
from .spec import TABLE_PARTS, Experiment


@dataclass(frozen=True)
class PlannedRun:
    """One run of the study: a condition (factor values) and a seed."""

    id: str
    condition: tuple[tuple[str, Any], ...]  # (factor, value) in the file's order
    seed: int

    @property
    def values(self) -> dict[str, Any]:
        """The condition as a mapping."""
        return dict(self.condition)

    def label(self) -> str:
        """The condition as text, e.g. `layout=chat`."""
        return condition_label(self.condition)


def _show(name: str, value: Any) -> str:
    if name in TABLE_PARTS:
        return Path(value).name  # the directory's own name
    return json.dumps(value) if not isinstance(value, str) else value


def condition_label(condition: tuple[tuple[str, Any], ...]) -> str:
    """A condition as `k=v, k=v` (`all runs` when nothing varies)."""
    return ", ".join(f"{k}={_show(k, v)}" for k, v in condition) or "all runs"


def run_id(condition: tuple[tuple[str, Any], ...], seed: int) -> str:
    """A stable id: readable values, the seed, and a short hash of both (no collisions)."""
    words = "_".join(f"{k}-{_show(k, v)}" for k, v in condition) or "base"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", words).strip("-.")[:60] or "c"
    canon = json.dumps([[k, v] for k, v in condition] + [seed], sort_keys=True, default=str)
    digest = hashlib.sha256(canon.encode()).hexdigest()[:6]
    return f"{slug}-s{seed}-{digest}"


def expand(experiment: Experiment) -> list[PlannedRun]:
    """Every run: the full cross product of the factors, times the seeds."""
    names = list(experiment.factors)
    runs = []
    for combo in itertools.product(*(experiment.factors[n] for n in names)):
        condition = tuple(zip(names, combo, strict=True))
        for seed in experiment.seeds:
            runs.append(PlannedRun(run_id(condition, seed), condition, seed))
    return runs


def interleave(runs: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The runs seed-major (each condition's first seed, then each one's second, ...): queued
    condition by condition, the conditions would meet different loads on the server, which
    shows up in their timing figures as a difference they do not have."""
    rank = {seed: i for i, seed in enumerate(dict.fromkeys(r.seed for r in runs))}
    return sorted(runs, key=lambda r: rank[r.seed])  # stable: conditions keep their order


def conditions(runs: list[PlannedRun]) -> list[tuple[tuple[str, Any], ...]]:
    """The distinct conditions, in plan order."""
    return list(dict.fromkeys(r.condition for r in runs))


def build_table(experiment: Experiment, run: PlannedRun) -> Table:
    """The table for one run: the base table, the study's settings, the condition and seed."""
    flags = {**experiment.settings, "seed": run.seed}
    return _build(experiment, run, flags)


class TableCache:
    """Each condition's table loaded once (files read, templates compiled); runs differ in
    their seed only. Shared by worker threads: tables are immutable."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self._tables: dict[Any, Table] = {}
        self._made_with: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def table(self, run: PlannedRun) -> Table:
        """The run's table."""
        key = repr(run.condition)
        with self._lock:
            if key not in self._tables:
                self._tables[key] = build_table(self.experiment, run)
            table = self._tables[key]
        return replace(table, settings=replace(table.settings, seed=run.seed))

    def made_with(self, run: PlannedRun) -> dict[str, Any]:
        """What the run's condition is made with (provenance.made_with), once per condition."""
        key = repr(run.condition)
        if key not in self._made_with:
            self._made_with[key] = made_with(self.table(run))
        return self._made_with[key]


def _build(experiment: Experiment, run: PlannedRun, flags: dict[str, Any]) -> Table:
    parts = {}
    for name, value in run.condition:
        if name in TABLE_PARTS:
            parts[name] = Path(value)
        else:
            flags[name] = value
    try:
        table = load_table(experiment.table, flags=flags)
        if parts:
            personas = (
                tuple(load_personas(parts["participants"]))
                if "participants" in parts
                else table.personas
            )
            task = load_task(parts["task"]) if "task" in parts else table.task
            table = replace(
                table,
                personas=personas,
                task=task,
                prompts=Prompts(table.directory, task, personas),
            )
        if has_human(table):
            # A study runs unattended, many runs at once: nobody can type.
            raise InputError(
                'participants: a human seat ("human": true) cannot take part in a study; '
                "remove it, or join the table with roundtable run"
            )
    except InputError as exc:
        message = _study_keys(str(exc), experiment)
        raise InputError(f"{experiment.path}: condition {run.label()}: {message}") from None
    return table


def _study_keys(message: str, experiment: Experiment) -> str:
    """The table's error in the experiment file's terms: its settings reach the table as
    command-line flags, which a study does not have, so `--wrap-up-turns` becomes
    `settings.wrap_up_turns` (or `factors.wrap_up_turns`)."""

    def key(name: str) -> str:
        name = name.replace("-", "_")
        return f"factors.{name}" if name in experiment.factors else f"settings.{name}"

    def to(match: re.Match[str]) -> str:
        return f"set {key(match[1])} to {match[2]}"

    message = re.sub(r"\badd --([a-z][a-z0-9-]*) ([^\s,;]+)", to, message)
    return re.sub(r"--([a-z][a-z0-9-]*)", lambda m: key(m[1]), message)


def check_plan(experiment: Experiment, runs: list[PlannedRun]) -> None:
    """Load every condition's table once, so a bad combination fails before any run."""
    seen: set[Any] = set()
    for run in runs:
        if run.condition not in seen:
            seen.add(run.condition)
            build_table(experiment, run)


def describe_plan(experiment: Experiment, runs: list[PlannedRun]) -> str:
    """What --dry-run prints: the runs, grouped by condition."""
    lines = [
        f"study {experiment.name}: {len(runs)} runs = {len(conditions(runs))} "
        f"condition(s) x {len(experiment.seeds)} seed(s)"
    ]
    for condition in conditions(runs):
        lines.append(f"  {condition_label(condition)}:")
        lines.extend(f"    {r.id}" for r in runs if r.condition == condition)
    return "\n".join(lines)
