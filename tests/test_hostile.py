"""Hostile input: every bad file or value is one clean error; model output is made safe."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roundtable.cli import main
from roundtable.config import SETTING_NAMES, load_settings
from roundtable.errors import InputError
from roundtable.personas import Persona, load_personas

FIELDS = list(Persona.__dataclass_fields__) + ["nmae", "creativty", "", "colour"]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.one_of(
    values,
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=8),
    st.fixed_dictionaries(
        {"name": values, "full_name": values, "prompt": values},
        optional={"creativity": values, "color": values},
    ),
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_persona_document_is_valid_or_one_clean_error(doc):
    try:
        persona = Persona.from_dict(doc, source="p.json")
    except InputError as exc:
        assert str(exc).startswith("p.json: ") and "\n" not in str(exc)
        return
    assert (
        persona.name.strip() and 0 <= persona.creativity <= 1 and math.isfinite(persona.creativity)
    )


settings_docs = st.dictionaries(
    st.sampled_from(list(SETTING_NAMES) + ["turnz", "modle"]), values, max_size=6
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=settings_docs)
def test_any_settings_document_is_valid_or_one_clean_error(tmp_path, doc):
    path = tmp_path / "roundtable.yaml"
    try:
        path.write_text(yaml.safe_dump(doc))
    except yaml.YAMLError:
        return
    try:
        s, _ = load_settings(tmp_path, env={})
    except InputError as exc:
        assert str(exc).count("\n") == 0
        return
    assert s.turns >= 1 and s.wrap_up_turns <= s.turns


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".json", ".yaml"]))
def test_any_bytes_in_a_persona_file_are_valid_or_one_clean_error(tmp_path, raw, suffix):
    d = tmp_path / "participants"
    d.mkdir(exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    (d / f"p{suffix}").write_bytes(raw)
    try:
        load_personas(d)
    except InputError as exc:
        assert str(exc).startswith(str(d / f"p{suffix}")) and "\n" not in str(exc)


def write_persona(table: Path, **fields) -> Path:
    path = table / "participants" / "role1.json"
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda t: write_persona(t, name="Ben"), "is already used by"),
        (lambda t: write_persona(t, name=" \t "), '"name" must not be empty'),
        (
            lambda t: write_persona(t, creativity=float("nan")),
            '"creativity" must be a number from 0 to 1',
        ),
        (lambda t: (t / "task" / "questions.txt").unlink(), "questions.txt: task file not found"),
        (lambda t: (t / "task" / "questions.txt").write_text("\n# none\n"), "no questions"),
        (lambda t: (t / "task" / "context.txt").write_bytes(b"caf\xe9"), "not valid UTF-8"),
        (
            lambda t: (t / "task" / "context.txt").write_text("x" * (1024 * 1024 + 1)),
            "the limit is 1 MiB",
        ),
        (
            lambda t: (t / "prompts" / "turn.j2").write_text("{% for %}"),
            "turn.j2: line 1: template syntax error",
        ),
        (
            lambda t: (t / "prompts" / "system.j2").write_text("{{ nope }}"),
            "system.j2: line 1: 'nope' is undefined",
        ),
        (
            lambda t: (t / "roundtable.yaml").write_text("max_token: 5\n"),
            'unknown setting "max_token" (did you mean "max_tokens"?)',
        ),
        (lambda t: (t / "roundtable.yaml").write_text("turns: [\n"), "invalid YAML"),
        (lambda t: (t / "participants" / "role2.json").write_text("{"), "invalid JSON"),
    ],
    ids=[
        "duplicate",
        "blank-name",
        "nan",
        "no-questions-file",
        "empty-questions",
        "non-utf8",
        "too-big",
        "jinja-syntax",
        "jinja-undefined",
        "unknown-setting",
        "yaml-syntax",
        "json-syntax",
    ],
)
def test_hostile_table_files_exit_2_with_one_error_line(table, capsys, change, message):
    change(table)
    assert main(["--table", str(table), "--offline"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and err.startswith("Error: ")
        and message in err
        and "Traceback" not in err
    )


def test_names_with_regex_metacharacters_work_end_to_end(table, tmp_path):
    write_persona(table, name="A.*(x)?")
    assert (
        main(
            [
                "--table",
                str(table),
                "--offline",
                "--turns",
                "4",
                "--quiet",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )


EVIL = (
    "The plan \x1b]0;pwned\x07 needs trees. Shade helps \x1b[2J\x1b[31m everyone now. "
    "Cooling centres \x9b2J save lives. Money \x07 matters here."
)


def test_escape_sequences_from_the_model_never_reach_the_terminal(dummy, table, tmp_path, capsys):
    server = dummy(corpus=(EVIL + "\n\n") * 20)
    out = tmp_path / "o"
    assert (
        main(
            [
                "--table",
                str(table),
                "--base-url",
                server.base_url,
                "--seed",
                "1",
                "--turns",
                "4",
                "--out",
                str(out),
                "--no-color",
            ]
        )
        == 0
    )
    shown = capsys.readouterr()
    assert not any(c in shown.out + shown.err for c in "\x1b\x07\x9b")
    raw = (out / "transcript.jsonl").read_text()
    assert "\\u001b" in raw  # the transcript keeps the raw text
    assert "\x1b" not in (out / "transcript.md").read_text()


def test_api_keys_never_appear_anywhere(dummy, table, tmp_path, capsys, monkeypatch):
    secret = "sk-test-DO-NOT-LEAK-1234"
    server = dummy(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    argv = ["--table", str(table), "--base-url", server.base_url, "--turns", "3"]
    assert main([*argv, "-v", "--out", str(tmp_path / "o")]) == 0
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-ALSO-SECRET")
    assert main([*argv, "--out", str(tmp_path / "o2")]) == 1
    shown = capsys.readouterr()
    files = "".join(p.read_text() for p in tmp_path.glob("o*/*") if p.is_file())
    for text in (shown.out, shown.err, files):
        assert secret not in text and "ALSO-SECRET" not in text
    assert "rejected the API key (401)" in shown.err


def test_dummy_serves_50_concurrent_streams_without_error(dummy):
    server = dummy(tokens_per_second=400)

    def one(i: int) -> str:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=20,
            seed=i,
            stream=True,
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(50) as pool:
        texts = list(pool.map(one, range(50)))
    assert len(texts) == 50 and all(t.strip() for t in texts)
