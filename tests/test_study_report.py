from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from roundtable.cli import main
from roundtable.study.charts import Panel, y_range
from roundtable.study.report import build
from roundtable.study.stats import (
    bootstrap_ci,
    choice_test,
    cliffs_delta,
    cohens_d,
    cramers_v,
    permutation_p,
    sign_flip_p,
)


def test_bootstrap_ci_covers_the_true_mean() -> None:
    # 200 samples of 30 from N(5, 2): a 95% interval covers 5 about 190 times.
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(200):
        e = bootstrap_ci(rng.normal(5, 2, 30).tolist(), seed=i, resamples=1000)
        assert e.low <= e.mean <= e.high
        covered += e.low <= 5 <= e.high
    assert 176 <= covered <= 199
    assert bootstrap_ci([3.0, 3.0, 3.0]).low == 3.0 == bootstrap_ci([3.0, 3.0, 3.0]).high
    again = bootstrap_ci([1, 2, 9, 4], seed=3)
    assert again == bootstrap_ci([1, 2, 9, 4], seed=3)  # seeded: reproducible


def test_permutation_test() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 25).tolist()
    assert permutation_p(a, list(a)) > 0.9  # identical groups do not reject
    same = [
        permutation_p(
            rng.normal(0, 1, 20).tolist(), rng.normal(0, 1, 20).tolist(), seed=i, resamples=500
        )
        for i in range(40)
    ]
    assert sum(p < 0.05 for p in same) <= 6  # about 5% false positives, not more
    shifted = permutation_p(a, [x + 2 for x in a])
    assert shifted < 0.001
    assert sign_flip_p([0.5, 1.0, 0.8, 1.2, 0.9, 0.7, 1.1, 0.6]) < 0.02
    assert sign_flip_p([1, -1, 1, -1]) > 0.9


@pytest.mark.parametrize(
    ("counts", "labels", "chi2", "v", "rejects"),
    [
        ([[2, 1]] * 20, [0] * 10 + [1] * 10, 0.0, 0.0, False),
        ([[3, 0]] * 10 + [[0, 3]] * 10, [0] * 10 + [1] * 10, 60.0, 1.0, True),
        ([[2, 3]] * 10 + [[3, 2]] * 10, [0] * 10 + [1] * 10, 4.0, 0.2, True),
        ([[2, 3], [3, 2]] * 10, [0] * 10 + [1] * 10, 0.0, 0.0, False),
        ([[1, 0, 0]] * 8 + [[0, 1, 0]] * 8 + [[0, 0, 1]] * 8, [0] * 8 + [1] * 8 + [2] * 8,
         48.0, 1.0, True),
    ],
    ids=["identical", "opposite", "small-but-every-run", "mixed-alike", "three-conditions"],
)  # fmt: skip
def test_choice_test_on_known_tables(counts, labels, chi2, v, rejects) -> None:
    test = choice_test(counts, labels)
    assert test.chi2 == pytest.approx(chi2) and test.cramers_v == pytest.approx(v)
    assert test.n == sum(map(sum, counts))
    # Whole runs are shuffled: a small effect (V 0.2) seen in every run is a clear one.
    assert (test.p < 0.01) if rejects else (test.p > 0.05)
    assert cramers_v([[20, 30], [30, 20]]) == pytest.approx(0.2)
    assert choice_test([[1, 2]], [0]).p != choice_test([[1, 2]], [0]).p  # one condition: nan


def test_choice_test_false_positives_stay_near_five_percent() -> None:
    rng = np.random.default_rng(3)
    ps = [
        choice_test(rng.multinomial(4, [0.5, 0.3, 0.2], 20).tolist(), [0] * 10 + [1] * 10,
                    seed=i, resamples=400).p
        for i in range(40)
    ]  # fmt: skip
    assert sum(p < 0.05 for p in ps) <= 6


@pytest.mark.parametrize(
    ("a", "b", "d", "delta"),
    [
        ([1, 2, 3], [1, 2, 3], 0.0, 0.0),
        ([1, 2, 3], [4, 5, 6], 3.0, 1.0),
        ([4, 5, 6], [1, 2, 3], -3.0, -1.0),
    ],
    ids=["same", "higher", "lower"],
)
def test_effect_sizes(a: list[float], b: list[float], d: float, delta: float) -> None:
    assert cohens_d(a, b) == pytest.approx(d)
    assert cliffs_delta(a, b) == pytest.approx(delta)


def _study(tmp_path: Path) -> Path:
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(
        json.dumps(
            {
                "name": "known",
                "runs": 12,
                "factors": {"layout": ["shared", "chat"]},
                "questionnaire": [
                    {
                        "id": "mood",
                        "kind": "likert",
                        "question": "?",
                        "scale": 5,
                        "labels": [],
                        "options": [],
                        "min": None,
                        "max": None,
                        "when": ["before", "after"],
                    },
                    {
                        "id": "pick",
                        "kind": "choice",
                        "question": "?",
                        "scale": None,
                        "labels": [],
                        "options": ["a", "b", "c"],
                        "min": None,
                        "max": None,
                        "when": ["after"],
                    },
                ],
            }
        )
    )
    with (out / "runs.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["id", "layout", "status", "gini"])
        w.writeheader()
        for i in range(6):
            w.writerow({"id": f"s{i}", "layout": "shared", "status": "completed", "gini": 0.1})
            w.writerow(
                {"id": f"c{i}", "layout": "chat", "status": "completed", "gini": 0.5 + i / 100}
            )
    with (out / "answers.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["run", "layout", "persona", "item", "when", "answer", "missing"])
        w.writeheader()
        for i in range(6):
            for run, layout in ((f"s{i}", "shared"), (f"c{i}", "chat")):
                w.writerow(
                    {
                        "run": run,
                        "layout": layout,
                        "persona": "A",
                        "item": "mood",
                        "when": "before",
                        "answer": 2,
                        "missing": False,
                    }
                )
                w.writerow(
                    {
                        "run": run,
                        "layout": layout,
                        "persona": "A",
                        "item": "mood",
                        "when": "after",
                        "answer": 4,
                        "missing": False,
                    }
                )
                for persona in ("A", "B"):  # shared runs choose a, chat runs b
                    w.writerow({"run": run, "layout": layout, "persona": persona, "item": "pick",
                                "when": "after", "answer": "a" if layout == "shared" else "b",
                                "missing": False})  # fmt: skip
    return out


def test_report_on_known_data(tmp_path: Path) -> None:
    out = _study(tmp_path)
    text = build(out).read_text()
    assert "| gini | 0.1 [0.1, 0.1] (n=6) | 0.525 [0.51" in text
    assert "| C1 | layout=shared | 6 | 6 |" in text and "| C2 | layout=chat | 6 | 6 |" in text
    line = next(x for x in text.splitlines() if x.startswith("| gini | C2 vs C1"))
    assert "+0.425" in line and "| 0.00" in line  # a clear difference: p < 0.01
    assert "| 1 |" in line  # Cliff's delta: every chat run above every shared run
    assert "| mood | C1 | 2 [2, 2] (n=6) |" in text  # before -> after shift, per run
    assert "- **pick** (layout=shared, n=12): a: 100%, b: 0%, c: 0%" in text
    line = next(x for x in text.splitlines() if x.startswith("| pick (after) |"))
    assert line.startswith("| pick (after) | all conditions | 24 | 0.00")  # p < 0.01
    assert line.endswith("| 1 | 24 in 12 runs |")  # Cramér's V 1: the layout decides
    assert (out / "metrics.png").stat().st_size > 1000
    assert (out / "questionnaire.png").stat().st_size > 1000


def _rewrite(path: Path, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    rows = change(rows)
    columns += [k for k in rows[0] if k not in columns]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def test_report_does_not_depend_on_the_order_runs_finished(tmp_path: Path) -> None:
    out = _study(tmp_path)
    spread = random.Random(3)
    _rewrite(out / "runs.csv", lambda rows: [{**r, "gini": spread.random()} for r in rows])
    _rewrite(
        out / "answers.csv", lambda rows: [{**r, "answer": spread.randint(1, 5)} for r in rows]
    )
    first = build(out).read_text()
    for name in ("runs.csv", "answers.csv"):
        _rewrite(out / name, lambda rows: random.Random(7).sample(rows, len(rows)))
    assert build(out).read_text() == first


def test_before_after_shift_is_tested_over_runs_not_personas(tmp_path: Path) -> None:
    out = _study(tmp_path)

    def second_persona(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        moods = [r for r in rows if r["item"] == "mood"]  # the choice item's rows stay as they are
        return rows + [{**r, "persona": "B", "answer": str(int(r["answer"]) + 1)} for r in moods]

    _rewrite(out / "answers.csv", second_persona)
    text = build(out).read_text()
    # 6 runs of 2 personas each: 6 values (one per run), not 12.
    assert "| mood | C2 | 2 [2, 2] (n=6) |" in text


def test_readable_numbers_and_all_zero_metrics(tmp_path: Path) -> None:
    out = _study(tmp_path)

    def more(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**r, "prompt_tokens": "4551", "echo_turns": "0"} for r in rows]

    _rewrite(out / "runs.csv", more)
    text = build(out).read_text()
    assert "| prompt_tokens | 4,551 [4,551, 4,551] (n=6) |" in text and "e+03" not in text
    assert "Not charted, 0 in every run: echo_turns." in text


@pytest.mark.filterwarnings("error")  # matplotlib warns when it draws an empty chart
def test_report_when_every_run_failed(tmp_path: Path) -> None:
    out = _study(tmp_path)
    build(out)
    _rewrite(out / "runs.csv", lambda rows: [{**r, "status": "failed"} for r in rows])
    text = build(out).read_text()
    assert "No completed runs: nothing to measure or compare yet." in text
    assert "| metric |" not in text and "- **mood**" not in text
    assert not (out / "metrics.png").exists() and not (out / "questionnaire.png").exists()


@pytest.mark.parametrize(
    ("values", "scale", "low", "high", "note"),
    [
        ([2.2, 2.8, 2.5], (1.0, 5.0), 1.0, 5.0, ""),
        ([0.0, 0.0], None, -1.0, 1.0, "all runs: 0"),
        ([7.0, 7.0], None, 6.0, 8.0, "all runs: 7"),
    ],
    ids=["likert-scale", "all-zero", "constant"],
)
def test_chart_axis(
    values: list[float], scale: tuple[float, float] | None, low: float, high: float, note: str
) -> None:
    panel = Panel("x", {"c": values}, {"c": bootstrap_ci(values)}, scale)
    found = y_range(panel, values)
    assert found is not None and found[0] <= low and found[1] >= high and found[2] == note
    assert found[1] - found[0] <= (high - low) * 1.2  # the scale, not far beyond it


def test_chart_axis_left_to_matplotlib_for_varied_values() -> None:
    assert y_range(Panel("x", {"c": [1, 2]}, {"c": bootstrap_ci([1, 2])}), [1, 2]) is None


def test_report_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err


def test_a_chart_that_cannot_be_saved_leaves_no_figure_open(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from roundtable.study.charts import plot
    from roundtable.study.stats import bootstrap_ci

    values = (1.0, 2.0, 3.0)
    panel = Panel("x", {"a": values}, {"a": bootstrap_ci(values)})
    before = len(plt.get_fignums())
    with pytest.raises(OSError):
        plot(tmp_path / "missing-dir" / "x.png", [panel], ["a"], {"a": "C1"})
    assert len(plt.get_fignums()) == before
