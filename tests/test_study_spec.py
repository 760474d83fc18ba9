from __future__ import annotations

from pathlib import Path

import pytest

from roundtable.cli import main
from roundtable.errors import InputError
from roundtable.study.plan import build_table, check_plan, expand, run_id
from roundtable.study.spec import load_experiment


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tabel: table\n", 'exp.yaml: tabel: unknown key (did you mean "table"?)'),
        ("name: x\n", "exp.yaml: table: missing"),
        ("table: nowhere\n", "exp.yaml: table: directory"),
        (
            "table: table\nfactors:\n  layout: [shared, grid]\n",
            "exp.yaml: factors.layout[1]: must be one of shared, chat",
        ),
        (
            "table: table\nfactors:\n  layot: [shared]\n",
            'exp.yaml: factors.layot: unknown key (did you mean "layout"?)',
        ),
        (
            "table: table\nfactors:\n  layout: shared\n",
            "exp.yaml: factors.layout: expected a non-empty list",
        ),
        (
            "table: table\nfactors:\n  participants: [nope]\n",
            "exp.yaml: factors.participants[0]: directory",
        ),
        (
            "table: table\nsettings:\n  seed: 3\n",
            "exp.yaml: settings.seed: set by the study; use seeds",
        ),
        (
            "table: table\nsettings:\n  turns: 0\n",
            "exp.yaml: settings.turns: must be an integer >= 1",
        ),
        ("table: table\nseeds: -1\n", "exp.yaml: seeds: expected a count"),
        (
            "table: table\nendpoints:\n  - concurrency: 0\n",
            "exp.yaml: endpoints[0].concurrency: must be",
        ),
        (
            "table: table\nendpoints:\n  - base_url: ftp://x\n",
            "exp.yaml: endpoints[0].base_url: must be",
        ),
        (
            "table: table\nquestionnaire:\n  - {id: q, kind: stars, question: Q}\n",
            "exp.yaml: questionnaire[0].kind: must be one of likert",
        ),
        (
            "table: table\nquestionnaire:\n  - {id: q, kind: choice, question: Q, options: [a]}\n",
            "exp.yaml: questionnaire[0].options: must be a list of at least two",
        ),
        (
            "table: table\nquestionnaire:\n  - {id: q, kind: text, question: Q, scale: 3}\n",
            "exp.yaml: questionnaire[0].scale: does not apply to a text item",
        ),
        (
            "table: table\nquestionnaire:\n  - {id: q, kind: likert, question: Q, when: later}\n",
            "exp.yaml: questionnaire[0].when: must be after",
        ),
        (
            "table: table\nquestionnaire:\n  - {id: q, kind: text, question: Q}\n"
            "  - {id: r, kind: text, question: R}\n  - {id: q, kind: text, question: S}\n",
            "exp.yaml: questionnaire[2].id: 'q' is also the id of questionnaire[0]",
        ),
    ],
    ids=[
        "typo",
        "no-table",
        "table-missing",
        "bad-value",
        "bad-factor",
        "not-list",
        "bad-dir",
        "seed-owned",
        "bad-setting",
        "seeds",
        "concurrency",
        "url",
        "kind",
        "options",
        "misplaced",
        "when",
        "same-id",
    ],
)
def test_schema_errors(
    table: Path, tmp_path: Path, body: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, body)
    assert main(["study", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err
    assert len(err.splitlines()) == 1


def test_bad_combination_names_the_condition(table: Path, tmp_path: Path) -> None:
    # wrap_up_turns 5 is fine alone, but not with turns 3: caught before any run, and
    # named by the experiment's keys (a study has no command-line flags for them).
    path = _write(
        tmp_path, "table: table\nsettings: {wrap_up_turns: 5}\nfactors:\n  turns: [8, 3]\n"
    )
    exp = load_experiment(path)
    with pytest.raises(InputError) as caught:
        check_plan(exp, expand(exp))
    message = str(caught.value)
    assert message.startswith(f"{path}: condition turns=3: settings.wrap_up_turns: ")
    assert "lower settings.wrap_up_turns to 3" in message and "factors.turns" in message
    assert "--" not in message


def test_factors_times_seeds_and_stable_ids(table: Path, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "table: table\nfactors:\n  layout: [shared, chat]\n"
        "  temperature_scale: [0.5, 1.0, 1.5]\nseeds: [4, 9]\n",
    )
    runs = expand(load_experiment(path))
    assert len(runs) == 2 * 3 * 2
    assert len({r.id for r in runs}) == 12
    assert {(r.values["layout"], r.values["temperature_scale"], r.seed) for r in runs} == {
        (lay, t, s) for lay in ("shared", "chat") for t in (0.5, 1.0, 1.5) for s in (4, 9)
    }
    again = expand(load_experiment(path))
    assert [r.id for r in again] == [r.id for r in runs]  # stable across loads
    assert runs[0].id == run_id((("layout", "shared"), ("temperature_scale", 0.5)), 4)
    assert runs[0].id.startswith("layout-shared_temperature_scale-0.5-s4-")
    # A different condition or seed never shares an id.
    assert run_id((("layout", "chat"),), 1) != run_id((("layout", "chat"),), 2)


def test_seed_count_and_table_parts(table: Path, tmp_path: Path) -> None:
    alt = tmp_path / "pair"
    alt.mkdir()
    for f in sorted((table / "participants").iterdir())[:2]:
        (alt / f.name).write_text(f.read_text())
    path = _write(
        tmp_path,
        "table: table\nfactors:\n  participants: [table/participants, pair]"
        "\nseeds: 2\nsettings: {turns: 4}\n",
    )
    exp = load_experiment(path)
    runs = expand(exp)
    assert [r.seed for r in runs] == [0, 1, 0, 1]
    small = build_table(exp, runs[2])
    assert len(small.personas) == 2 and small.settings.seed == 0 and small.settings.turns == 4
    assert len(build_table(exp, runs[0]).personas) == 4


def test_dry_run_lists_runs(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path, "table: table\nfactors:\n  speaker_selection: [natural, round_robin]\nseeds: 2\n"
    )
    assert main(["study", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs = 2 condition(s) x 2 seed(s)" in out
    assert out.count("speaker_selection-round_robin-s") == 2
    assert f"the study would be written to {table / 'studies' / 'exp'}/ (--out)" in out
    assert not (table / "studies").exists()
