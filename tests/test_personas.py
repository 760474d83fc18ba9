from __future__ import annotations

import json
from pathlib import Path

import pytest

from roundtable.errors import InputError
from roundtable.personas import Persona, load_personas

GOOD = {"name": "Ada", "full_name": "Ada Lovelace", "prompt": "You are a mathematician."}


def write(d: Path, name: str, data) -> Path:
    d.mkdir(exist_ok=True)
    path = d / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_example_table_loads(table):
    personas = load_personas(table / "participants")
    assert [p.name for p in personas] == ["Amara", "Ben", "Chen", "Dara"]
    assert personas[0].creativity == 0.6 and personas[2].color == "bright_green"


def test_legacy_role_files_natural_order_gaps_and_yaml(tmp_path):
    d = tmp_path / "participants"
    for i in (10, 2, 1):
        write(d, f"role{i}.json", {**GOOD, "name": f"R{i}"})
    write(d, "role3.yaml", "name: R3\nfull_name: Three\nprompt: hi\n")
    write(d, "notes.txt", "ignored")
    assert [p.name for p in load_personas(d)] == ["R1", "R2", "R3", "R10"]


def test_defaults_and_literal_template_text(tmp_path):
    p = load_personas(
        write(tmp_path / "p", "a.json", {**GOOD, "prompt": "Say {{ x }} {% if %}"}).parent
    )[0]
    assert p.creativity == 0.7 and p.color is None and p.prompt == "Say {{ x }} {% if %}"


BAD = [
    ("invalid-json", "a.json", '{"name": "A",', "invalid JSON at line 1"),
    ("invalid-yaml", "a.yaml", "name: [unclosed\n", "invalid YAML"),
    ("not-a-mapping", "a.json", "[1, 2]", "expected a mapping"),
    (
        "unknown-key",
        "a.json",
        {**GOOD, "creativty": 0.5},
        'unknown field "creativty" (did you mean "creativity"?)',
    ),
    (
        "missing-prompt",
        "a.json",
        {"name": "A", "full_name": "B"},
        'missing required field "prompt"',
    ),
    ("name-not-text", "a.json", {**GOOD, "name": 5}, '"name" must be text, got 5'),
    ("empty-name", "a.json", {**GOOD, "name": ""}, '"name" must not be empty'),
    ("blank-name", "a.json", {**GOOD, "name": "   "}, '"name" must not be empty'),
    ("multiline-name", "a.json", {**GOOD, "name": "A\nB"}, "one line of text"),
    ("reserved-name", "a.json", {**GOOD, "name": "Moderator"}, "is reserved"),
    (
        "creativity-high",
        "a.json",
        {**GOOD, "creativity": 1.5},
        '"creativity" must be a number from 0 to 1, got 1.5',
    ),
    ("creativity-string", "a.json", {**GOOD, "creativity": "high"}, 'got "high"'),
    ("creativity-bool", "a.json", {**GOOD, "creativity": True}, "got true"),
    (
        "creativity-nan",
        "a.json",
        '{"name": "A", "full_name": "B", "prompt": "c", "creativity": NaN}',
        '"creativity" must be',
    ),
    ("bad-color", "a.json", {**GOOD, "color": "plaid"}, '"color" must be one of'),
    ("not-utf8", "a.json", b'{"name": "\xff"}', "not valid UTF-8"),
    ("too-big", "a.json", "x" * (1024 * 1024 + 1), "the limit is 1 MiB"),
]


@pytest.mark.parametrize("name,filename,content,message", BAD, ids=[b[0] for b in BAD])
def test_bad_persona_files_name_file_and_field(tmp_path, name, filename, content, message):
    d = tmp_path / "participants"
    path = write(d, filename, content)
    with pytest.raises(InputError) as exc:
        load_personas(d)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_duplicate_names_case_insensitive(tmp_path):
    d = tmp_path / "participants"
    write(d, "a.json", GOOD)
    write(d, "b.json", {**GOOD, "name": "ADA"})
    with pytest.raises(InputError, match=r"b\.json: \"name\" 'ADA' is already used by .*a\.json"):
        load_personas(d)


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(InputError, match="participants directory not found"):
        load_personas(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no persona files"):
        load_personas(tmp_path / "empty")


def test_to_dict_round_trips():
    p = Persona.from_dict({**GOOD, "color": "#ff8800"})
    assert Persona.from_dict(p.to_dict()) == p
