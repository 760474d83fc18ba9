from __future__ import annotations

from pathlib import Path

import pytest

from roundtable.cli import main


def _experiment(tmp_path: Path, max_tokens: int = 30) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"table: table\nsettings: {{turns: 3, wrap_up_turns: 1, max_tokens: {max_tokens}}}\n"
        "factors:\n  layout: [shared, chat]\nseeds: 1\n",
        encoding="utf-8",
    )
    return path


def _study(path: Path, out: Path) -> int:
    return main(["study", str(path), "--out", str(out), "--offline", "--no-progress"])


def _edit_persona(table: Path) -> None:
    persona = table / "participants" / "role1.json"
    persona.write_text(persona.read_text().replace("You plan", "Briefly: you plan", 1))


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        (lambda t, p: _experiment(p.parent, max_tokens=40), "max_tokens: 30 -> 40"),
        (lambda t, p: _edit_persona(t), "participants changed"),
        (lambda t, p: (t / "task" / "context.txt").write_text("Another topic."), "task changed"),
    ],
    ids=["setting", "persona", "task"],
)
def test_a_changed_experiment_or_table_is_refused(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, differs: str
) -> None:
    path, out = _experiment(tmp_path), tmp_path / "out"
    assert _study(path, out) == 0
    assert _study(path, out) == 0  # the same experiment again: nothing to do, no complaint
    change(table, path)  # type: ignore[operator]
    capsys.readouterr()
    assert _study(path, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"Error: {out}: run layout-")
    assert " (and 1 more) was made with different settings/table (" in err[0]
    assert differs in err[0] and err[0].endswith("; use a new --out or delete them")
    assert _study(path, tmp_path / "fresh") == 0  # a new --out is fine


def test_runs_the_experiment_no_longer_plans_are_refused(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, out = _experiment(tmp_path), tmp_path / "out"
    assert _study(path, out) == 0
    path.write_text(path.read_text().replace("[shared, chat]", "[shared]"))
    capsys.readouterr()
    assert _study(path, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: {out}: run layout-chat-s0-") and "\n" not in err
    assert err.endswith("is not part of this experiment (its condition or seed is no longer "
                        "planned); use a new --out or delete it")  # fmt: skip


def test_moving_a_personas_own_server_is_not_a_table_change(table: Path, tmp_path: Path) -> None:
    # Where a persona's model is served (and with which key) may change between
    # invocations, as the table's endpoint may; a rotated token must not strand a study.
    path, out = _experiment(tmp_path), tmp_path / "out"
    assert _study(path, out) == 0
    with (table / "participants" / "role3.yaml").open("a") as f:
        f.write("\nbase_url: http://u:token@gpu.example:8000/v1\napi_key_env: GPU_KEY\n")
    assert _study(path, out) == 0
