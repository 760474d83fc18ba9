from __future__ import annotations

import shutil

import pytest

from roundtable.errors import InputError
from roundtable.table import RESUME_FLAGS, load_table


def test_the_example_table_loads(table):
    t = load_table(table, env={})
    assert [p.name for p in t.personas] == ["Amara", "Ben", "Chen", "Dara"]
    assert t.config_file == table / "roundtable.yaml" and t.settings.turns_per_topic == 3
    assert t.personas[0].source == str(table / "participants" / "role1.json")
    assert len(t.task.questions) == 4


def test_flags_env_and_config_file_reach_the_settings(table, tmp_path):
    other = tmp_path / "other.yml"
    other.write_text("turns: 6\nmax_tokens: 90\n")
    t = load_table(table, other, env={"ROUNDTABLE_MAX_TOKENS": "80"}, flags={"seed": "5"})
    assert (t.settings.turns, t.settings.max_tokens, t.settings.seed) == (6, 80, 5)
    assert t.config_file == other


def test_roundtable_yml_and_upper_case_persona_files(table):
    (table / "roundtable.yaml").rename(table / "roundtable.yml")
    (table / "participants" / "role1.json").rename(table / "participants" / "role1.JSON")
    (table / "participants" / "._role1.json").write_bytes(b"\x00\x05\x16\x07")
    t = load_table(table, env={})
    assert t.config_file == table / "roundtable.yml" and len(t.personas) == 4


def break_one_persona(table):
    for path in sorted((table / "participants").iterdir())[1:]:
        path.unlink()


def duplicate_key(table):
    path = table / "participants" / "role2.json"
    path.write_text(path.read_text().replace("{", '{"name": "X", ', 1))


BROKEN = [
    ("no-table", lambda t: shutil.rmtree(t), "table directory not found; pass --table DIR"),
    ("no-participants", lambda t: shutil.rmtree(t / "participants"),
     "participants directory not found"),
    ("one-persona", break_one_persona,
     "participants: only one persona ("),
    ("duplicate-key", duplicate_key, 'role2.json: duplicate key "name"'),
    ("no-task", lambda t: shutil.rmtree(t / "task"), "task directory not found"),
    ("bad-setting", lambda t: (t / "roundtable.yaml").write_text("turns: -1\n"),
     'roundtable.yaml: "turns": must be an integer >= 1, got -1'),
    ("two-settings-files", lambda t: (t / "roundtable.yml").write_text("turns: 2\n"),
     "roundtable.yml: roundtable.yaml is here too; keep one settings file"),
    ("bad-template", lambda t: (t / "prompts" / "turn.j2").write_text("{% if %}"),
     "turn.j2"),
]  # fmt: skip


@pytest.mark.parametrize("name,breaker,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_table_is_one_error_naming_the_place(table, name, breaker, message):
    breaker(table)
    with pytest.raises(InputError) as exc:
        load_table(table, env={})
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_one_persona_error_says_why_and_names_the_file(table):
    break_one_persona(table)
    with pytest.raises(InputError) as exc:
        load_table(table, env={})
    assert str(exc.value) == (
        f"{table / 'participants'}: only one persona ({table / 'participants' / 'role1.json'}); "
        "a roundtable needs at least two participants: add another persona file"
    )


def test_a_missing_config_file_is_named(table):
    with pytest.raises(InputError, match=r"nope\.yaml: config file not found \(--config\)"):
        load_table(table, table / "nope.yaml", env={})


def test_resume_flags_are_the_resumable_declarations():
    assert RESUME_FLAGS == {"base_url", "model", "api_key_env", "timeout", "retries",
                            "retry_wait", "compat", "stream", "selector_base_url",
                            "selector_model"}  # fmt: skip


def test_persona_json_with_a_bom_in_a_whole_table(table):
    path = table / "participants" / "role1.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_table(table, env={}).personas[0].name == "Amara"


@pytest.fixture
def recorded_run(table, tmp_path):
    """A finished one-turn offline run whose recorded base_url a test may rewrite."""
    from roundtable.cli import main

    out = tmp_path / "run"
    assert (
        main(["--table", str(table), "--offline", "--turns", "1", "--quiet", "--out", str(out)])
        == 0
    )
    return out


def _record_base_url(run_dir, url):
    import json

    jsonl = run_dir / "transcript.jsonl"
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["settings"]["base_url"] = url
    jsonl.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    "url",
    ["http://***@gpu:8000/v1", "https://h/v1?key=***", "https://h/v1?x=1&api-key=***&y"],
    ids=["userinfo", "query-key", "query-api-key-among-others"],
)
def test_a_resume_refuses_a_recorded_base_url_whose_credentials_were_masked(recorded_run, url):
    from roundtable.table import load_run

    _record_base_url(recorded_run, url)
    with pytest.raises(InputError, match="held credentials.*pass --base-url again"):
        load_run(recorded_run, {})
    table, _ = load_run(recorded_run, {"base_url": "https://h/v1?key=real"})
    assert table.settings.base_url == "https://h/v1?key=real"


def test_a_resume_keeps_a_recorded_base_url_without_masked_credentials(recorded_run):
    from roundtable.table import load_run

    _record_base_url(recorded_run, "https://h/v1?mode=***x&key=")
    table, _ = load_run(recorded_run, {})
    assert table.settings.base_url == "https://h/v1?mode=***x&key="


def test_a_personas_url_credentials_are_not_recorded_and_a_resume_takes_them_from_its_file(
    table, tmp_path
):
    import json

    from roundtable.table import load_run

    role = table / "participants" / "role2.json"
    data = json.loads(role.read_text(encoding="utf-8"))
    role.write_text(json.dumps({**data, "base_url": "http://u:pw@gpu:8000/v1?key=SECRET"}))
    from roundtable.cli import main

    out = tmp_path / "run"
    assert (
        main(["--table", str(table), "--offline", "--turns", "1", "--quiet", "--out", str(out)])
        == 0
    )
    recorded = (out / "transcript.jsonl").read_text(encoding="utf-8")
    assert "SECRET" not in recorded and "pw" not in recorded
    t, _ = load_run(out, {})
    assert t.personas[1].base_url == "http://u:pw@gpu:8000/v1?key=SECRET"
    role.write_text(json.dumps({**data, "base_url": "http://gpu:8000/v1"}))
    with pytest.raises(InputError, match="Ben's base_url held credentials.*restore"):
        load_run(out, {})


def test_run_directory_is_the_directory_or_the_one_holding_transcript_jsonl(tmp_path):
    from roundtable.table import run_directory

    (tmp_path / "transcript.jsonl").write_text("")
    assert run_directory(tmp_path) == tmp_path == run_directory(tmp_path / "transcript.jsonl")
    with pytest.raises(InputError, match="no transcript.jsonl here"):
        run_directory(tmp_path / "elsewhere")


def test_the_selectors_url_credentials_are_not_recorded_and_a_resume_asks_for_them(table, tmp_path):
    import json

    from roundtable.cli import main
    from roundtable.table import load_run

    out = tmp_path / "run"
    url = "https://u:pw@sel.example/v1?api_key=zz"
    argv = ["--table", str(table), "--offline", "--turns", "2", "--quiet", "--out", str(out),
            "--speaker-selection", "llm", "--selector-base-url", url]  # fmt: skip
    assert main(argv) == 0
    text = (out / "transcript.jsonl").read_text()
    assert "pw" not in text and "zz" not in text
    recorded = json.loads(text.splitlines()[0])["settings"]["selector_base_url"]
    assert recorded == "https://***@sel.example/v1?api_key=***"
    with pytest.raises(InputError, match="selector_base_url held credentials.*--selector-base"):
        load_run(out, {})
    again, _ = load_run(out, {"selector_base_url": url})
    assert again.settings.selector_base_url == url
