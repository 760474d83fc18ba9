from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from roundtable.cli import main
from roundtable.config import DECLARATIONS, Settings, load_settings
from roundtable.personas import load_personas
from roundtable.scaffold import STARTERS, init_table, settings_yaml, table_files
from roundtable.table import load_table


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("exists", [False, True], ids=["new-dir", "empty-dir"])
def test_init_makes_a_table_that_checks_and_runs_offline(tmp_path, capsys, exists):
    d = tmp_path / "new"
    if exists:
        d.mkdir()
    assert main(["init", str(d)]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["participants", "roundtable.yaml", "task"]
    assert main(["check", "--table", str(d)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["--table", str(d), "--offline", "--turns", "3", "--seed", "1", "-q"]) == 0
    [run] = (d / "outputs").iterdir()
    assert (run / "transcript.jsonl").read_text().count('"type": "turn"') >= 3


@pytest.mark.parametrize(
    "topic,first",
    [
        ("Should the school week have four days?", "Should the school week have four days?"),
        ("remote work", "What should be done about remote work?"),
    ],
    ids=["question", "noun"],
)
def test_the_topic_is_the_first_question_and_in_the_context(tmp_path, topic, first):
    init_table(tmp_path / "t", topic=topic)
    task = load_table(tmp_path / "t", env={}).task
    assert task.questions[0] == first and len(task.questions) == 4
    assert topic in " ".join(task.context.split()) and "#" not in task.context


def test_task_files_say_what_they_are_for(tmp_path):
    init_table(tmp_path / "t")
    for path in (tmp_path / "t" / "task").iterdir():
        assert path.read_text().startswith("# "), path.name


@pytest.mark.parametrize("n", [2, len(STARTERS)], ids=["fewest", "most"])
def test_personas_are_distinct_and_plausible(tmp_path, n):
    init_table(tmp_path / "t", personas=n)
    personas = load_personas(tmp_path / "t" / "participants")
    assert len({p.name for p in personas}) == len({p.prompt for p in personas}) == n
    assert all(p.introduction and "," in p.full_name for p in personas)


def test_persona_files_comment_every_field(tmp_path):
    init_table(tmp_path / "t", personas=2)
    for path in (tmp_path / "t" / "participants").iterdir():
        lines = path.read_text().splitlines()
        keys = [i for i, line in enumerate(lines) if re.match(r"(# )?[a-z_]+: ", line)]
        assert len(keys) == 7, path.name
        assert all(lines[i - 1].startswith("# ") for i in keys), path.name


def test_every_setting_is_in_roundtable_yaml_at_its_default(tmp_path):
    text = settings_yaml()
    for name in DECLARATIONS:
        assert re.search(rf"^# {name}: ", text, re.M), name
    # Uncommenting every setting gives a valid file that changes nothing.
    (tmp_path / "roundtable.yaml").write_text(re.sub(r"^# (\w+: )", r"\1", text, flags=re.M))
    data = yaml.safe_load((tmp_path / "roundtable.yaml").read_text())
    assert set(data) == set(DECLARATIONS)
    assert load_settings(tmp_path, env={}) == (Settings(), tmp_path / "roundtable.yaml")


def test_a_non_empty_directory_is_refused_unless_forced(tmp_path, capsys):
    d = tmp_path / "t"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    assert main(["init", str(d)]) == 2
    assert error_line(capsys).startswith(f"Error: {d}: directory is not empty;")
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    assert main(["init", str(d), "--force", "--personas", "3"]) == 0
    assert (d / "notes.txt").read_text() == "mine"
    assert len(load_table(d, env={}).personas) == 3


def test_forcing_fewer_personas_says_which_old_ones_are_still_there(tmp_path, capsys):
    d = tmp_path / "t"
    assert main(["init", str(d)]) == 0
    assert "note" not in capsys.readouterr().out
    old = sorted(p.name for p in (d / "participants").iterdir())
    assert main(["init", str(d), "--force", "--personas", "2"]) == 0
    kept = [n for n in old if f"participants/{n}" not in table_files(2, "x")]
    notes = [x for x in capsys.readouterr().out.splitlines() if "note:" in x]
    assert notes == [
        f"roundtable: note: {d / 'participants'} now holds 4 persona files: 2 written now and "
        f"2 kept from before ({', '.join(kept)}); delete any you do not want"
    ]
    assert main(["init", str(d), "--force", "--personas", "4"]) == 0
    assert "note:" not in capsys.readouterr().out  # every persona file written now


def test_with_prompts_copies_the_built_in_templates(tmp_path):
    init_table(tmp_path / "t", with_prompts=True)
    built_in = Path(__file__).resolve().parents[1] / "roundtable" / "templates"
    copied = tmp_path / "t" / "prompts"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in built_in.iterdir())
    assert all((copied / p.name).read_text() == p.read_text() for p in built_in.iterdir())
    assert load_table(tmp_path / "t", env={}).prompts.warnings == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--personas", "1"], "Error: --personas: must be from 2 to 8, got 1;"),
        (
            ["--personas", "0"],
            "Error: --personas: must be from 2 to 8, got 0; a table starts with at least two "
            "personas; replace them later",
        ),  # fmt: skip
        (
            ["--personas", "9"],
            "Error: --personas: must be from 2 to 8, got 9; for more, start with 8 and draft the "
            "rest with `roundtable personas draft`",
        ),  # fmt: skip
        (["--topic", " \n "], "Error: --topic: must not be empty;"),
    ],
    ids=["one-persona", "zero", "too-many", "empty-topic"],
)
def test_bad_flags_are_one_error_line(tmp_path, capsys, argv, message):
    assert main(["init", str(tmp_path / "t"), *argv]) == 2
    assert error_line(capsys).startswith(message)
    assert not (tmp_path / "t").exists()
