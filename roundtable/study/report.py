"""placeholder"""

from __future__ import annotations

from pathlib import Path

from .results import Results, read_json


def rebuild(out: Path) -> Path:
    """Rebuild runs.csv and answers.csv."""
    info = read_json(out / "study.json", {})
    Results(out, list(info.get("factors") or {})).rebuild()
    return out / "runs.csv"
