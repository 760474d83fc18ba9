from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dummy_server import BackgroundServer
from roundtable.client import ChatClient
from roundtable.errors import ServerError
from roundtable.study.questionnaire import Questionnaire, parse, schema, shown
from roundtable.study.spec import Item
from roundtable.table import load_table

PICK = Item("pick", "choice", "Which one?", options=("red", "green", "blue", "amber"))
MOOD = Item("mood", "likert", "Mood?", scale=5, when=("before", "after"))
SHARE = Item("share", "number", "Percent?", min=0, max=100)
NOTE = Item("note", "text", "One line?")
ITEMS = (PICK, MOOD, SHARE, NOTE)


class Scripted:
    """A client that answers from a function of the prompt, recording what it was sent."""

    def __init__(self, answer: Callable[[str, int], str], refuse_schema: bool = False) -> None:
        self.answer, self.refuse_schema = answer, refuse_schema
        self.sent: list[dict[str, Any]] = []

    def complete(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> Any:
        self.sent.append({"messages": list(messages), **kwargs})
        if self.refuse_schema and (kwargs.get("sampling") or {}).get("extra_body"):
            raise ServerError("http://x/v1: 400 response_format is not supported")
        return SimpleNamespace(text=self.answer(messages[-1]["content"], len(messages)))


def _first_shown(prompt: str, n: int) -> str:
    if "exactly one of:" in prompt:
        first = re.search(r'exactly one of: "([^"]+)"', prompt)
        assert first
        return json.dumps({"answer": first.group(1)})
    if "an integer from 1 to 5" in prompt:
        return '{"answer": 4}'
    if "a number" in prompt:
        return '```json\n{"answer": 12.5}\n```'
    return '{"answer": "Plain words."}'


def test_prompt_path_unshuffles_choices(table: Path) -> None:
    t = load_table(table)
    client = Scripted(_first_shown)
    q = Questionnaire(ITEMS, {id(client): False})
    rows = q.ask(t, {p.name: client for p in t.personas}, "after", seed=7, records=[])
    picks = [r for r in rows if r["item"] == "pick"]
    assert len(picks) == len(t.personas)
    orders = {tuple(r["shown_order"]) for r in picks}
    assert len(orders) > 1  # shuffled per persona
    for r in picks:
        first = r["shown_order"][0]
        assert r["answer"] == PICK.options[first] and r["answer_index"] == first  # original order
        assert shown(PICK, 7, r["persona"]).order == tuple(r["shown_order"])  # seeded
    assert {r["answer"] for r in rows if r["item"] == "mood"} == {4}
    assert {r["answer"] for r in rows if r["item"] == "share"} == {12.5}
    assert not any(r["missing"] for r in rows)
    assert all("response_format" not in json.dumps(s.get("sampling")) for s in client.sent)


def test_invalid_twice_is_missing_never_invented(table: Path) -> None:
    t = load_table(table)
    client = Scripted(lambda prompt, n: '{"answer": 9}' if n == 2 else "I think 3, maybe.")
    q = Questionnaire((MOOD,), {id(client): False})
    rows = q.ask(t, {p.name: client for p in t.personas}, "before", seed=1)
    assert [r["answer"] for r in rows] == [None] * len(t.personas)
    assert all(r["missing"] for r in rows)
    assert len(client.sent) == 2 * len(t.personas)  # one re-ask each, then given up
    assert "not a valid answer" in client.sent[1]["messages"][-1]["content"]


def test_one_reask_recovers(table: Path) -> None:
    t = load_table(table)
    client = Scripted(lambda prompt, n: '{"answer": 2}' if n > 2 else "Two!")
    rows = Questionnaire((MOOD,), {}).ask(t, {p.name: client for p in t.personas}, "after", 3)
    assert {r["answer"] for r in rows} == {2}


def test_schema_refused_falls_back_to_prompt(table: Path) -> None:
    t = load_table(table)
    client = Scripted(_first_shown, refuse_schema=True)
    q = Questionnaire((MOOD,), {id(client): True})
    rows = q.ask(t, {p.name: client for p in t.personas}, "after", seed=2)
    assert {r["answer"] for r in rows} == {4} and not any(r["structured"] for r in rows)
    assert q.structured[id(client)] is False


@pytest.mark.parametrize("support", [True, False], ids=["schema", "no-schema"])
def test_against_dummy_server(
    table: Path, dummy: Callable[..., BackgroundServer], support: bool
) -> None:
    server = dummy(json_schema=support)
    t = load_table(table)
    client = ChatClient(server.base_url, "x", None, retries=0)
    try:
        rows = Questionnaire(ITEMS, {id(client): True}).ask(
            t,
            {p.name: client for p in t.personas},
            "after",
            seed=5,
            records=[{"type": "turn", "speaker": "Amara", "text": "Hello there."}],
        )
    finally:
        client.close()
    assert len(rows) == 4 * len(t.personas)
    if support:
        assert not any(r["missing"] for r in rows)
        for r in rows:
            assert (
                parse(
                    shown(next(i for i in ITEMS if i.id == r["item"]), 5, r["persona"]),
                    json.dumps({"answer": r["answer"]}),
                )[1]
                == ""
            )
    else:
        # Markov text is no answer: recorded as missing, never made up.
        assert all(r["missing"] and r["answer"] is None for r in rows)


def test_schema_shapes() -> None:
    view = shown(PICK, 1, "Ben")
    s = schema(view)
    assert s["required"] == ["answer"]
    assert s["properties"]["answer"]["enum"] == view.options
    assert sorted(view.options) == sorted(PICK.options)
    assert schema(shown(MOOD, 1, "Ben"))["properties"]["answer"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
    }
    assert parse(shown(SHARE, 1, "B"), '{"answer": 101}')[0] is None
    assert parse(shown(PICK, 1, "B"), '{"answer": "GREEN"}')[0] == "green"


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema", "json_schema": {"name": "a", "strict": True, "schema": "S"}},
        {"type": "json_object", "schema": "S"},
    ],
    ids=["openai-form", "llama-cpp-python-form"],
)
def test_dummy_server_answers_within_the_schema(
    dummy: Callable[..., BackgroundServer], fmt: dict[str, Any]
) -> None:
    server = dummy()
    s = schema(shown(PICK, 1, "Ben"))
    s["properties"]["n"] = {"type": "integer", "minimum": 3, "maximum": 4}
    body = json.loads(json.dumps(fmt).replace('"S"', json.dumps(s)))
    request = {"messages": [{"role": "user", "content": "Pick."}], "response_format": body}
    for seed in range(20):
        req = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps({**request, "seed": seed}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as response:
            answer = json.loads(json.load(response)["choices"][0]["message"]["content"])
        assert answer["answer"] in PICK.options and answer["n"] in (3, 4)
    with urllib.request.urlopen(f"{server.root_url}/stats") as response:
        stats = json.load(response)
    assert stats == {"active": 0, "peak": 1, "requests": 20}


def test_llama_cpp_python_is_sent_its_own_schema_form(table: Path) -> None:
    # It answers OpenAI's json_schema form with a 500, and a long maxLength kills it.
    t = load_table(table)
    client = Scripted(_first_shown)
    client.family = "llama-cpp-python"  # type: ignore[attr-defined]
    q = Questionnaire((PICK, NOTE), {id(client): True})
    rows = q.ask(t, {p.name: client for p in t.personas}, "after", seed=7, records=[])
    assert rows and not any(r["missing"] for r in rows)
    formats = [s["sampling"]["extra_body"]["response_format"] for s in client.sent]
    assert formats and all(f["type"] == "json_object" for f in formats)
    assert all("maxLength" not in json.dumps(f) for f in formats)
