"""What a run was made with, recorded so a re-run never mixes in runs made differently.

A run's id covers its condition and seed only; the rest of what shapes it (the study's
settings, the table's own settings file, the personas, the task, the prompt templates)
is recorded in its study.json as `made_with` and compared on every later invocation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import RESUMABLE
from ..errors import InputError
from .results import RUN_FILE, read_json

if TYPE_CHECKING:  # plan.py uses this module
    from ..table import Table
    from .plan import PlannedRun

# How a run reaches its server and copes with it, not what the discussion is: these may
# change between invocations (a run's seed is part of its id). The model stays in.
OPERATIONAL = (RESUMABLE - {"model", "selector_model"}) | {"seed"}


def _plain(value: Any) -> Any:
    """The value as JSON gives it back (tuples become lists), so recorded and new compare."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def made_with(table: Table) -> dict[str, Any]:
    """The effective settings and a hash of each table part (personas, task, prompts)."""
    settings = {k: v for k, v in asdict(table.settings).items() if k not in OPERATIONAL}
    # A persona's own endpoint (base_url, api_key_env, ...) is operational too.
    personas = [
        {k: v for k, v in asdict(p).items() if k != "source" and k not in OPERATIONAL}
        for p in table.personas
    ]
    parts = {
        "participants": personas,
        "task": asdict(table.task),
        "prompts": table.prompts.sources(),
    }
    return {"settings": _plain(settings), "table": {k: _digest(v) for k, v in parts.items()}}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two made_with records, e.g. `max_tokens: 60 -> 80`."""
    found = []
    before, after = old.get("settings") or {}, new.get("settings") or {}
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            found.append(f"{key}: {json.dumps(before.get(key))} -> {json.dumps(after.get(key))}")
    parts_before, parts_after = old.get("table") or {}, new.get("table") or {}
    for part in sorted(set(parts_before) | set(parts_after)):
        if parts_before.get(part) != parts_after.get(part):
            found.append(f"{part} changed")
    return found


def check_recorded(
    out: Path, runs: Sequence[PlannedRun], expected: Callable[[PlannedRun], dict[str, Any]]
) -> None:
    """Refuse (InputError) when a recorded run of the plan was made with other settings or
    another table: resuming or keeping it would mix two experiments under one label."""
    mismatched: list[tuple[str, list[str]]] = []
    for run in runs:
        record = read_json(out / "runs" / run.id / RUN_FILE, None)
        if not isinstance(record, dict) or not isinstance(record.get("made_with"), dict):
            continue  # not recorded yet (or by a version that did not record it)
        diff = differences(record["made_with"], expected(run))
        if diff:
            mismatched.append((run.id, diff))
    planned = {run.id for run in runs}
    stray = sorted(
        d.name
        for d in (out / "runs").glob("*/")
        if d.name not in planned and (d / RUN_FILE).is_file()
    )
    if stray:
        # A run the experiment no longer plans (a factor value or seed taken out) would
        # still land in runs.csv and the report, beside runs of another experiment.
        others = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
        raise InputError(
            f"{out}: run {stray[0]}{others} is not part of this experiment (its condition or "
            f"seed is no longer planned); use a new --out or delete {'them' if others else 'it'}"
        )
    if mismatched:
        run_id, diff = mismatched[0]
        more = len(mismatched) - 1
        also = f" (and {more} more)" if more else ""
        raise InputError(
            f"{out}: run {run_id}{also} was made with different settings/table "
            f"({'; '.join(diff)}); use a new --out or delete {'them' if more else 'it'}"
        )
