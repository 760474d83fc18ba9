from __future__ import annotations

import time
from pathlib import Path

import pytest

from roundtable.cli import main
from roundtable.study.results import read_csv

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "layouts.yaml"


def test_example_experiment_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "layouts"
    started = time.perf_counter()
    assert main(["study", str(EXAMPLE), "--out", str(out)]) == 0
    assert time.perf_counter() - started < 60
    runs = read_csv(out / "runs.csv")
    assert len(runs) == 6 and {r["status"] for r in runs} == {"completed"}
    assert {r["layout"] for r in runs} == {"shared", "chat"}
    answers = read_csv(out / "answers.csv")
    assert len(answers) == 6 * 4 * 5  # runs x personas x (2 + 3 items)
    assert not any(a["missing"] == "True" for a in answers)  # the dummy honours the schema
    report = (out / "report.md").read_text()
    assert "| metric | C1 | C2 |" in report and "| C1 | layout=shared | 3 | 3 |" in report
    assert "satisfied" in report and (out / "metrics.png").is_file()
    run_dir = out / "runs" / runs[0]["id"]
    assert main(["metrics", str(run_dir)]) == 0  # an ordinary run directory
    capsys.readouterr()
    assert main(["study", str(EXAMPLE), "--out", str(out)]) == 0  # again: nothing to do
    assert "nothing to do: all 6 runs complete" in capsys.readouterr().err
    assert len(read_csv(out / "runs.csv")) == 6
