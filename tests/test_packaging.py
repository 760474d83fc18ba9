"""The package as a user gets it: a wheel installed in a fresh venv, away from this checkout.

Slow (a wheel build and a venv, about a minute) and it needs the package index for the
dependencies; CI runs it. Deselect it locally with `python -m pytest -m "not slow"`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from roundtable.prompts import TEMPLATES

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "roundtable", "dummy_server")


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_runs_a_table_without_prompts(tmp_path: Path) -> None:
    # Build from a copy, so the build leaves no build/ or egg-info in the checkout and
    # nothing outside the package (such as the example table's prompts/) can leak in.
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, src / name)
    # Nothing from the checkout or the developer's settings: no PYTHONPATH (through which
    # pip would see this checkout's egg-info as roundtable, already installed), cwd = the table.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("OPENAI_", "ROUNDTABLE_"))
    }
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        env=env,
    )
    [wheel] = dist.glob("roundtable-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    assert {f"roundtable/templates/{name}" for name in TEMPLATES} <= packaged

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", str(wheel)], env=env)

    table = tmp_path / "table"
    for name in ("participants", "task"):
        shutil.copytree(REPO / name, table / name)
    where = _run(
        [python, "-c", "import roundtable; print(roundtable.__file__)"], cwd=table, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)
    proc = subprocess.run(
        [python, "-m", "roundtable", "--offline", "--turns", "2", "--seed", "1"],
        cwd=table,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    [transcript] = (table / "outputs").glob("*/transcript.jsonl")
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert records[-1] == {"type": "end", "status": "completed"}
    assert [r["index"] for r in records if r["type"] == "turn"] == [0, 1, 2]
    assert (transcript.parent / "transcript.md").is_file()
