from __future__ import annotations

import json
from pathlib import Path

import pytest

from roundtable.config import PERSONA_SETTINGS
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


def test_dotfiles_skipped_and_suffixes_in_any_case(tmp_path):
    d = tmp_path / "participants"
    write(d, "._role1.json", b"\x00\x05\x16\x07 mac resource fork \xff")
    write(d, ".hidden.yaml", "name: [broken")
    write(d, "role1.JSON", GOOD)
    write(d, "role2.YML", "name: Bo\nfull_name: Bo B\nprompt: hi\n")
    write(d, "role3.Yaml", "name: Cy\nfull_name: Cy C\nprompt: hi\n")
    assert [p.name for p in load_personas(d)] == ["Ada", "Bo", "Cy"]


@pytest.mark.parametrize(
    "filename,content",
    [
        ("a.json", b'\xef\xbb\xbf{"name": "Ada", "full_name": "Ada L", "prompt": "p"}'),
        ("a.yaml", b"\xef\xbb\xbfname: Ada\nfull_name: Ada L\nprompt: p\n"),
    ],
    ids=["json", "yaml"],
)
def test_a_utf8_bom_is_accepted(tmp_path, filename, content):
    d = tmp_path / "participants"
    write(d, filename, content)
    assert load_personas(d)[0].name == "Ada"


MORE_BAD = [
    ("moderator-lower", "a.json", {**GOOD, "name": "moderator"}, "is reserved"),
    ("moderator-upper", "a.json", {**GOOD, "name": "MODERATOR"}, "is reserved"),
    ("yaml-no", "a.yaml", "name: No\nfull_name: N\nprompt: p\n",
     '"name" must be text, got false; YAML reads it as false: put the text in quotes, '
     'e.g. name: "No"'),
    ("yaml-number", "a.yml", "name: 1984\nfull_name: N\nprompt: p\n",
     'put the text in quotes, e.g. name: "1984"'),
    ("json-duplicate", "a.json", '{"name": "A", "full_name": "B", "prompt": "c", "name": "D"}',
     'duplicate key "name"'),
    ("json-nested-duplicate", "a.json",
     '{"name": "A", "full_name": "B", "prompt": "c", "extra_body": {"x": 1, "x": 2}}',
     'duplicate key "x"'),
    ("yaml-duplicate", "a.yaml", "name: A\nfull_name: B\nprompt: c\nname: D\n",
     'invalid YAML at line 4 column 1: duplicate key "name"'),
    ("yaml-model-number", "a.yaml", "name: A\nfull_name: B\nprompt: c\nmodel: 7\n",
     '"model": must be a model name, or null (the first model the server lists), got 7; '
     'YAML reads it as 7: put the text in quotes, e.g. model: "7"'),
    ("upper-case-json", "a.JSON", '{"name": "A",', "invalid JSON at line 1"),
    ("source-is-not-a-field", "a.json", {**GOOD, "source": "x.json"}, 'unknown field "source"'),
]  # fmt: skip


@pytest.mark.parametrize("name,filename,content,message", MORE_BAD, ids=[b[0] for b in MORE_BAD])
def test_more_bad_persona_files(tmp_path, name, filename, content, message):
    path = write(tmp_path / "participants", filename, content)
    with pytest.raises(InputError) as exc:
        load_personas(path.parent)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_a_yaml_merge_key_may_be_overridden(tmp_path):
    d = tmp_path / "participants"
    write(d, "a.yaml", "base: &b {x: 1}\nname: A\nfull_name: B\nprompt: c\nextra_body:\n"
                       "  <<: *b\n  x: 2\n")  # fmt: skip
    with pytest.raises(InputError, match='unknown field "base"'):
        load_personas(d)  # parsed (no duplicate-key error); only the extra field is refused


def test_source_names_the_file_but_is_not_part_of_the_value(tmp_path):
    path = write(tmp_path / "participants", "a.json", GOOD)
    persona = load_personas(path.parent)[0]
    assert persona.source == str(path)
    assert "source" not in persona.to_dict() and persona == Persona.from_dict(GOOD)


def test_persona_settings_are_persona_fields_checked_by_the_settings_rules(tmp_path):
    assert set(PERSONA_SETTINGS) <= set(Persona.__dataclass_fields__)
    with pytest.raises(InputError, match='a.json: "top_p": must be a number from 0 to 1'):
        Persona.from_dict({**GOOD, "top_p": 7}, source="a.json")


def test_persona_only_names_persona_fields_that_are_not_settings():
    from roundtable.config import DECLARATIONS, PERSONA_ONLY
    from roundtable.personas import Persona

    assert set(PERSONA_ONLY) <= set(Persona.__dataclass_fields__)
    assert not set(PERSONA_ONLY) & set(DECLARATIONS)


def test_an_empty_persona_file_says_so(tmp_path):
    (tmp_path / "x.yaml").write_text("")
    with pytest.raises(InputError, match=r"x.yaml: the file is empty"):
        load_personas(tmp_path)
