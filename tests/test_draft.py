from __future__ import annotations

import itertools
import json
import random
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roundtable.cli import main
from roundtable.client import Completion
from roundtable.draft import (
    Drafter,
    Vary,
    assignments,
    describe_attrs,
    parse_vary,
    shortfall,
    validate,
    write_new,
)
from roundtable.draft_command import file_text
from roundtable.errors import InputError, ServerError
from roundtable.personas import load_personas
from roundtable.scaffold import init_table


def persona(name: str = "Ann", creativity: Any = 0.5, **extra: Any) -> str:
    prompt = "You are a baker who likes facts and says so."
    return json.dumps({"name": name, "full_name": f"{name} Smith, baker", "prompt": prompt,
                       "creativity": creativity, "introduction": f"I'm {name}.",
                       **extra})  # fmt: skip


class Fake:
    """Answers drafts from a list (an exception is raised) and records what it was sent."""

    where = "http://fake.invalid/v1"

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.sent: list[dict[str, Any]] = []

    def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> Completion:
        self.sent.append({"messages": messages, **kwargs})
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return Completion(reply, "stop", 1, 1, "usage", 0.0, None)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "sizes,count,expected",
    [
        ((3,), 6, [{2}]),
        ((3,), 7, [{2, 3}]),
        ((2, 3), 6, [{3}, {2}]),
        ((2, 4), 5, [{2, 3}, {1, 2}]),
    ],
    ids=["even", "one-over", "two-keys", "two-keys-partial"],
)
def test_values_are_spread_evenly(sizes, count, expected):
    varies = [Vary(f"k{i}", tuple(f"v{j}" for j in range(n))) for i, n in enumerate(sizes)]
    plan = assignments(varies, count, seed=5)
    for vary, counts in zip(varies, expected, strict=True):
        seen = Counter(a[vary.key] for a in plan)
        assert set(seen.values()) == counts and len(seen) == min(len(vary.values), count)


def test_every_prefix_is_balanced_and_each_cycle_is_the_whole_product():
    for sizes in itertools.chain(itertools.product(range(1, 5), repeat=2), [(2, 2, 3), (3, 2, 4)]):
        varies = [Vary(f"k{i}", tuple(map(str, range(n)))) for i, n in enumerate(sizes)]
        total = len(list(itertools.product(*(v.values for v in varies))))
        plan = assignments(varies, 2 * total, seed=1)
        combos = [tuple(a.values()) for a in plan]
        assert len(set(combos[:total])) == len(set(combos[total:])) == total, sizes
        for k in range(1, len(plan) + 1):
            for vary in varies:
                counts = Counter(a[vary.key] for a in plan[:k])
                assert max(counts.values()) - min(counts.get(v, 0) for v in vary.values) <= 1


def test_the_spread_is_seeded():
    varies = [Vary("stance", ("for", "against", "undecided"))]
    assert assignments(varies, 5, 3) == assignments(varies, 5, 3)
    assert len({tuple(a["stance"] for a in assignments(varies, 3, s)) for s in range(20)}) > 1


@pytest.mark.parametrize(
    "sizes,count,short",
    [
        ((3,), 2, "1 of them gets none: "),
        ((2, 2), 2, "2 of them get none: "),
        ((3,), 4, "2 of them get one draft fewer than the others: "),
        ((3,), 6, None),
        ((2, 2), 8, None),
    ],
    ids=["value-dropped", "combinations-dropped", "one-fewer", "even", "even-combinations"],
)
def test_an_uneven_count_names_what_gets_fewer(sizes, count, short):
    varies = [Vary(f"k{i}", tuple(f"v{j}" for j in range(n))) for i, n in enumerate(sizes)]
    plan = assignments(varies, count, seed=5)
    found = shortfall(varies, plan)
    if short is None:
        assert found is None
        return
    assert found is not None and short in found
    drawn = Counter(describe_attrs(a) for a in plan)
    named = found.split(short)[1].split("; for an equal share")[0].split("; ")
    every = [describe_attrs(dict(zip((v.key for v in varies), c, strict=True)))
             for c in itertools.product(*(v.values for v in varies))]  # fmt: skip
    assert sorted(named) == sorted(c for c in every if drawn[c] == count // len(every))


@pytest.mark.parametrize(
    "text,message",
    [
        ("stance", "expected KEY=VALUE1,VALUE2"),
        ("two words=a,b", "expected KEY=VALUE1,VALUE2"),
        ("stance=for,,against", "values must be non-empty"),
        ("stance=for,for", "a value is given twice"),
        ("creativity=0.1,0.9", "is a persona field"),
    ],
    ids=["no-values", "bad-key", "empty-value", "twice", "persona-field"],
)
def test_bad_vary_is_an_input_error(text, message):
    with pytest.raises(InputError, match=message):
        parse_vary(text)


def test_a_draft_is_asked_for_with_a_schema_holding_its_attributes():
    fake = Fake([persona()])
    found, problem = Drafter(fake, seed=1).draft(0, "bakers", {"stance": "for"}, [])
    assert found is not None and found.name == "Ann" and problem == ""
    sent = fake.sent[0]
    props = sent["sampling"]["response_format"]["json_schema"]["schema"]["properties"]
    assert list(props)[:2] == ["stance", "name"] and props["stance"]["enum"] == ["for"]
    assert props["creativity"] == {
        "type": "number",
        "enum": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    }
    assert "stance: for" in sent["messages"][1]["content"]


def test_llama_cpp_python_is_sent_its_own_schema_form():
    fake = Fake([persona()])
    fake.family = "llama-cpp-python"  # refuses type json_schema; takes json_object + schema
    Drafter(fake, seed=1).draft(0, "bakers", {"stance": "for"}, [])
    sent = fake.sent[0]["sampling"]["response_format"]
    assert sent["type"] == "json_object"
    assert sent["schema"]["properties"]["stance"]["enum"] == ["for"]


@pytest.mark.parametrize(
    "first,wrong",
    [
        (persona(creativity=1.5), '"creativity" must be a number from 0 to 1, got 1.5'),
        (persona("Maya"), "\"name\" 'Maya' is already taken"),
        ("Sure! Here is a persona.", "the reply is not a JSON object"),
        (persona(age=40), 'unknown field "age"'),
        (persona(color="red"), '"color" is not for a draft'),
        (persona("..."), '"name" is a placeholder'),
        (persona(prompt="You are ..."), '"prompt" is too short'),
        (persona("What the others call them"), '"name" copies the instructions'),
    ],
    ids=[
        "creativity",
        "duplicate-name",
        "prose",
        "unknown-field",
        "other-field",
        "placeholder",
        "short-prompt",
        "recited",
    ],  # fmt: skip
)
def test_an_invalid_draft_is_asked_again_with_a_new_seed_and_the_reason(first, wrong):
    fake = Fake([first, persona()])
    found, problem = Drafter(fake, seed=1).draft(0, "bakers", {}, ["Maya"])
    assert found is not None and found.name == "Ann" and problem == ""
    assert fake.sent[0]["seed"] != fake.sent[1]["seed"]
    assert wrong in fake.sent[1]["messages"][1]["content"]


def test_a_draft_invalid_twice_is_skipped_with_the_reason():
    fake = Fake([persona(creativity="high"), persona(creativity=2)])
    found, problem = Drafter(fake, seed=1).draft(4, "bakers", {}, [])
    assert found is None and problem == '"creativity" must be a number from 0 to 1, got 2'


def test_a_server_that_refuses_the_schema_is_asked_in_plain_text():
    refused = ServerError("http://fake.invalid/v1: 400 response_format is not supported")
    fake = Fake([refused, persona("Ann"), persona("Bo")])
    drafter = Drafter(fake, seed=1)
    assert drafter.draft(0, "bakers", {}, [])[0] is not None
    assert drafter.draft(1, "bakers", {}, ["Ann"])[0] is not None
    assert [bool(s["sampling"]) for s in fake.sent] == [True, False, False]
    assert drafter.uses_schema is False


def test_write_new_never_overwrites(tmp_path):
    (tmp_path / "ann.yaml").write_text("mine")
    (tmp_path / "ann-2.json").write_text("{}")
    path = write_new(tmp_path, "ann", "drafted")
    assert path == tmp_path / "ann-3.yaml" and path.read_text() == "drafted"
    assert (tmp_path / "ann.yaml").read_text() == "mine"


def draft(table: Path, *argv: str) -> int:
    return main(["personas", "draft", "--table", str(table), "--brief", "bakers", *argv])


@pytest.fixture
def new_table(tmp_path: Path) -> Path:
    init_table(tmp_path / "t", personas=2)
    return tmp_path / "t"


def drafted(table: Path) -> dict[str, str]:
    files = sorted((table / "participants").iterdir())
    return {p.name: p.read_text() for p in files if p.name not in ("maya.yaml", "tomas.yaml")}


def test_drafts_offline_are_valid_files_spread_over_the_attributes(new_table, capsys):
    assert draft(new_table, "--count", "6", "--vary", "stance=for,against,undecided",
                 "--seed", "4", "--offline") == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert out.count("roundtable: draft ") == 6 and "drafted 6 of 6" in out
    assert "warning" not in err  # 6 is a multiple of the 3 values
    texts = drafted(new_table)
    stances = Counter(
        line for t in texts.values() for line in t.splitlines() if "Attributes" in line
    )
    assert sorted(stances.values()) == [2, 2, 2] and len(texts) == 6
    assert len(load_personas(new_table / "participants")) == 8  # the same loader, unique names
    assert main(["check", "--table", str(new_table)]) == 0


def test_drafting_is_seeded(tmp_path, dummy):
    server = dummy()
    for name in ("a", "b"):
        init_table(tmp_path / name, personas=2)
        assert draft(tmp_path / name, "--count", "3", "--vary", "age=young,old", "--seed", "9",
                     "--base-url", server.base_url) == 0  # fmt: skip
    assert drafted(tmp_path / "a") == drafted(tmp_path / "b")


def test_a_server_without_schemas_drafts_nothing_and_says_why(new_table, dummy, capsys):
    server = dummy(json_schema=False)  # ignores response_format: Markov text comes back
    assert draft(new_table, "--count", "2", "--seed", "1", "--base-url", server.base_url) == 1
    err = capsys.readouterr().err
    warnings = [x for x in err.splitlines() if x.startswith("roundtable: warning:")]
    assert [w.split(":")[2] for w in warnings] == [" draft 1/2", " draft 2/2"]
    assert all("not a JSON object" in w for w in warnings)
    assert "Error: no persona could be drafted" in err and drafted(new_table) == {}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--count", "0"], "Error: --count: must be from 1 to 100, got 0"),
        (["--count", "2", "--vary", "a=x", "--vary", "a=y"], "Error: --vary a: given twice"),
        (["--count", "2", "--brief", " "], "Error: --brief: must not be empty"),
    ],
    ids=["count", "vary-twice", "empty-brief"],
)
def test_bad_flags_are_one_error_line(new_table, capsys, argv, message):
    assert draft(new_table, *argv) == 2
    assert error_line(capsys).startswith(message) and drafted(new_table) == {}


def test_a_file_as_table_says_it_is_a_file(new_table, capsys):
    assert draft(new_table / "roundtable.yaml", "--count", "1", "--offline") == 2
    line = error_line(capsys)
    assert line.startswith(f"Error: {new_table / 'roundtable.yaml'}: is a file, not a table "
                           "directory") and "roundtable init" not in line  # fmt: skip
    assert drafted(new_table) == {}


def test_a_missing_table_says_how_to_make_one(tmp_path, capsys):
    assert draft(tmp_path / "nope", "--count", "1") == 2
    assert "roundtable init" in error_line(capsys)


@pytest.mark.parametrize("made", [[], ["participants"]], ids=["empty", "participants-only"])
def test_a_folder_that_is_not_a_table_is_refused_and_left_alone(
    tmp_path, monkeypatch, capsys, made
):
    for name in made:
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)  # no --table: the current directory
    code = main(["personas", "draft", "--count", "2", "--brief", "x", "--offline"])
    line = error_line(capsys)
    assert code == 2 and line == (
        "Error: .: not a table (no task/ directory); create one with `roundtable init .` "
        "or pass --table DIR"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == made


def test_seeds_differ_between_drafts():
    fake = Fake([persona("Ann"), persona("Bo")])
    drafter = Drafter(fake, seed=random.Random(0).randrange(100))
    drafter.draft(0, "x", {}, [])
    drafter.draft(1, "x", {}, ["Ann"])
    assert fake.sent[0]["seed"] != fake.sent[1]["seed"]


def test_names_in_the_table_and_earlier_drafts_are_taken(new_table, monkeypatch):
    seen: list[list[str]] = []
    real = Drafter.draft

    def spy(self, index, brief, attrs, taken):
        seen.append(list(taken))
        return real(self, index, brief, attrs, taken)

    monkeypatch.setattr(Drafter, "draft", spy)
    assert draft(new_table, "--count", "2", "--seed", "2", "--offline") == 0
    first = load_personas(new_table / "participants")
    assert seen[0] == ["Maya", "Tomas"] and seen[1][:2] == ["Maya", "Tomas"]
    assert len(seen[1]) == 3 and seen[1][2] in {p.name for p in first}


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=30), prompt=st.text(min_size=40, max_size=300),
       intro=st.text(max_size=60))  # fmt: skip
def test_any_valid_draft_is_written_as_yaml_that_reads_back_the_same(name, prompt, intro):
    reply = json.dumps({"name": name, "full_name": f"{name}, x", "prompt": prompt,
                        "creativity": 0.5, "introduction": intro})  # fmt: skip
    try:
        found = validate(reply, {}, [], "draft 1")
    except InputError:
        return
    file_text(found, "a brief: with # and 'quotes'\n", {"k": "v"}, 1, 0)  # raises if not


def test_a_server_that_is_down_is_one_error_not_a_refused_schema(new_table, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    assert draft(new_table, "--count", "1", "--base-url", url, "--retries", "0") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "unreachable" in err and len(err.splitlines()) == 1
    assert drafted(new_table) == {}


def test_a_failed_draft_leaves_no_empty_participants_directory(new_table, capsys):
    import shutil

    shutil.rmtree(new_table / "participants")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    assert draft(new_table, "--count", "1", "--base-url", url, "--retries", "0") == 1
    assert not (new_table / "participants").exists()


def test_a_count_that_drops_a_value_says_so_once(new_table, capsys):
    # Seeded: an unseeded offline draft now and then has a persona skipped, a second warning.
    argv = ["--count", "2", "--vary", "stance=a,b,c", "--offline", "--seed", "1"]
    assert draft(new_table, *argv) == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert len(warnings) == 1 and warnings[0].startswith(
        "roundtable: warning: --count 2 is not a multiple of the 3 values of --vary (stance): "
        "1 of them gets none: stance="
    )


def test_help_does_not_promise_a_transcript(capsys):
    with pytest.raises(SystemExit):
        main(["personas", "draft", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "transcript" not in out and "--seed N makes the drafts repeatable;" in out
