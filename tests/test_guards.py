"""Guards: pure checks on hand-made texts, then each guard end to end against servers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from _loopback import serve

from roundtable import metrics
from roundtable import textstats as ts
from roundtable.attempts import anti_repetition
from roundtable.cli import main
from roundtable.client import ChatClient
from roundtable.display import Display
from roundtable.guards import Known, Said, Thresholds, cut, judge
from roundtable.run import Discussion
from roundtable.table import load_run, load_table
from roundtable.transcript import read_records

SAID = "The council should plant shade trees along every bus route this summer."
RULES = "Speak as yourself, in your own voice, in two to four sentences."
OTHERS = ("Ben Hartley", "Ben")


def known(said: str = SAID, prompts: str = RULES, others: tuple[str, ...] = OTHERS) -> Known:
    grams = Said()
    grams.add(said)
    return Known(grams.grams, ts.segment_ngrams([prompts], 6), others)


@pytest.mark.parametrize(
    "text,failed,offending,rest",
    [
        ("Cooling centres must open at night. Who pays for them?", (), (), None),
        (f"{SAID} Cooling centres must open at night.", ("echo",), (0,),
         "Cooling centres must open at night."),
        ("Well, speak as yourself, in your own voice, in two to four sentences. Trees help.",
         ("leak",), (0,), "Trees help."),
        ("I'm Ben Hartley. Shade is cheap.", ("identity",), (0,), "Shade is cheap."),
        ("Shade is cheap.\nAs an AI language model, I have no view.", ("identity",), (1,),
         "Shade is cheap."),
        (f"I'm Ben Hartley. {SAID}", ("echo", "identity"), (0, 1), ""),
        ("Ben is right that shade is cheap. I'm Chen.", (), (), None),
    ],
    ids=["clean", "echo", "leak", "identity-other", "identity-ai", "all-cut", "mention-only"],
)  # fmt: skip
def test_judge_and_cut(text, failed, offending, rest):
    verdict = judge(text, known())
    assert (verdict.failed, verdict.offending, verdict.ok) == (failed, offending, not failed)
    assert cut(text, verdict) == (text if rest is None else rest)


def test_echo_is_more_than_the_threshold_of_the_turns_5grams():
    # 8 words, 4 five-grams, 2 of them said: a share of exactly 0.5.
    text = "plant shade trees along every street in town"
    grams = Said()
    grams.add("we plant shade trees along every street")
    k = Known(grams.grams, set(), ())
    assert ts.copied_share(ts.words(text), grams.grams, 5) == 0.5
    assert judge(text, k).ok  # the default 0.5 is not exceeded
    assert judge(text, k, Thresholds(echo=0.4)).failed == ("echo",)


def test_leak_threshold_and_identity_switch():
    text = "In your own voice, in two to four sentences, I think trees matter most of all."
    assert judge(text, known()).failed == ("leak",)  # any copied 6-gram by default
    assert judge(text, known(), Thresholds(leak=0.5)).ok  # 3 of 11 six-grams copied
    assert judge("I'm Ben Hartley.", known(), Thresholds(identity=False)).ok


def test_said_grows_incrementally():
    said = Said()
    said.add("one two three four five")
    said.add("six seven eight nine ten eleven")
    assert said.grams == {("one", "two", "three", "four", "five"),
                          ("six", "seven", "eight", "nine", "ten"),
                          ("seven", "eight", "nine", "ten", "eleven")}  # fmt: skip


@pytest.mark.parametrize(
    "sampling,family,expected",
    [
        ({}, "unknown", {"frequency_penalty": 0.6, "presence_penalty": 0.6}),
        ({"frequency_penalty": 0.9, "presence_penalty": 0.1, "top_p": 0.9}, "unknown",
         {"frequency_penalty": 0.9, "presence_penalty": 0.6, "top_p": 0.9}),
        ({"extra_body": {"min_p": 0.1}}, "llama.cpp",
         {"frequency_penalty": 0.6, "presence_penalty": 0.6,
          "extra_body": {"min_p": 0.1, "repeat_penalty": 1.3}}),
        ({"extra_body": {"repeat_penalty": 1.5}}, "llama-cpp-python",
         {"frequency_penalty": 0.6, "presence_penalty": 0.6,
          "extra_body": {"repeat_penalty": 1.5}}),
    ],
    ids=["defaults", "persona-higher-kept", "llama-cpp", "llama-cpp-python-higher-kept"],
)  # fmt: skip
def test_anti_repetition_sampling(sampling, family, expected):
    assert anti_repetition(sampling, family) == expected


LISTING = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "me"}]}
MODELS = {("GET", "/v1/models"): (200, LISTING, {})}


@pytest.mark.parametrize(
    "routes,family",
    [
        ({("GET", "/props"): (200, {"n_ctx": 4096}, {})}, "llama.cpp"),
        ({("POST", "/extras/tokenize/count"): (200, {"count": 2}, {})}, "llama-cpp-python"),
        ({("POST", "/tokenize"): (200, {"count": 2}, {})}, "unknown"),
        ({}, "unknown"),
    ],
    ids=["props", "extras-tokenize", "plain-tokenize", "nothing"],
)
def test_server_family_from_what_it_showed(routes, family):
    with serve({**MODELS, **routes}) as (root, _):
        assert ChatClient(root + "/v1", "x", "m", 10).family == family


# -- end to end -----------------------------------------------------------------------
def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]


INTROS = " ".join(
    f"I'm {n}." for n in ("Amara Okafor", "Ben Hartley", "Chen Wei", "Dara Lindqvist")
)


@pytest.mark.parametrize(
    "corpus,guard,figure",
    [
        ("The council should plant shade trees along every bus route this summer. " * 3,
         "echo", "echo_turns"),
        ((Path(__file__).parents[1] / "task" / "discuss_instructions.txt").read_text(),
         "leak", "leak_turns"),
        (INTROS, "identity", "identity_other"),
    ],
    ids=["echo", "leak", "identity"],
)  # fmt: skip
def test_each_guard_against_the_dummy_server(dummy, table, tmp_path, corpus, guard, figure):
    server = dummy(corpus=corpus)
    out = tmp_path / "o"
    argv = ["--table", str(table), "--out", str(out), "--base-url", server.base_url,
            "--seed", "5", "--turns", "6", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    turns = [r for r in records(out) if r["type"] == "turn"]
    guarded = [t for t in turns if guard in t["guards"]]
    assert guarded, [t["guards"] for t in turns]
    # Every guarded turn was asked again (each request counted), or cut at the end.
    assert all(t["attempts"] >= 2 or "cut" in t["guards"] for t in guarded)
    assert all("cut" in t["guards"] for t in turns if t["finish_reason"].startswith("guarded"))
    # The accepted texts are free of the offence, by metrics' own count.
    figures = metrics.compute(out).figures
    assert figures[figure] == 0
    assert figures["attempts"] == sum(t["attempts"] for t in turns) > len(turns)


def test_guards_off_let_the_offence_through(dummy, table, tmp_path):
    server = dummy(corpus=INTROS)
    out = tmp_path / "o"
    argv = ["--table", str(table), "--out", str(out), "--base-url", server.base_url,
            "--seed", "5", "--turns", "6", "--quiet", "--no-identity-guard"]  # fmt: skip
    assert main(argv) == 0
    assert metrics.compute(out).figures["identity_other"] > 0


CHAT = ("POST", "/v1/chat/completions")


def completion(text: str) -> dict:
    return {"id": "c", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip


def test_a_re_ask_sends_a_new_seed_and_anti_repetition_sampling(table, tmp_path, capsys):
    leak = completion("Speak as yourself, in your own voice, in two to four sentences.")
    fresh = completion("Shade first, then cooling centres near the bus stops.")
    routes = {**MODELS, ("GET", "/props"): (200, {"n_ctx": 4096}, {}),
              CHAT: [(200, leak, {}), (200, fresh, {})]}  # fmt: skip
    with serve(routes) as (root, seen):
        argv = ["--table", str(table), "--out", str(tmp_path / "o"), "--base-url",
                root + "/v1", "--seed", "5", "--turns", "1", "--no-stream",
                "--presence-penalty", "0.8"]  # fmt: skip
        assert main(argv) == 0
    chats = [body for method, path, body in seen if (method, path) == CHAT]
    first, second = chats[0], chats[1]
    assert "frequency_penalty" not in first and "repeat_penalty" not in first
    assert first["presence_penalty"] == 0.8
    assert (second["frequency_penalty"], second["presence_penalty"]) == (0.6, 0.8)
    assert second["repeat_penalty"] == 1.3 and second["seed"] != first["seed"]
    turn = next(r for r in records(tmp_path / "o") if r["type"] == "turn")
    assert (turn["guards"], turn["attempts"]) == (["leak"], 2)
    assert turn["text"] == fresh["choices"][0]["message"]["content"]
    assert "roundtable: the reply recited its instructions; asking again" in capsys.readouterr().err


def test_the_last_resort_cuts_the_best_attempt(table, tmp_path):
    worse = completion("I'm Ben Hartley. Speak as yourself, in your own voice, in two to "
                       "four sentences.")  # fmt: skip
    better = completion("I'm Ben Hartley. Shade comes first.")
    routes = {**MODELS, CHAT: [(200, worse, {}), (200, better, {}), (200, worse, {})]}
    with serve(routes) as (root, _):
        argv = [
            "--table",
            str(table),
            "--out",
            str(tmp_path / "o"),
            "--base-url",
            root + "/v1",
            "--seed",
            "5",
            "--turns",
            "1",
            "--quiet",
            "--no-stream",
        ]
        assert main(argv) == 0
    turn = next(r for r in records(tmp_path / "o") if r["type"] == "turn")
    assert turn["attempts"] == 3 and turn["guards"][-1] == "cut"
    assert (turn["text"], turn["finish_reason"]) == ("Shade comes first.", "guarded")


def test_nothing_left_is_an_empty_turn(table, tmp_path, capsys):
    routes = {**MODELS, CHAT: [(200, completion("I'm Ben Hartley."), {})]}
    with serve(routes) as (root, _):
        argv = ["--table", str(table), "--out", str(tmp_path / "o"), "--base-url",
                root + "/v1", "--seed", "5", "--turns", "1", "--no-stream",
                "--guard-retries", "0"]  # fmt: skip
        assert main(argv) == 0
    turn = next(r for r in records(tmp_path / "o") if r["type"] == "turn")
    assert (turn["text"], turn["finish_reason"], turn["attempts"]) == ("", "guarded_empty", 1)
    assert turn["guards"] == ["identity", "cut"]
    passes = f"roundtable: the reply spoke as someone else; {turn['speaker']} passes"
    assert passes in capsys.readouterr().err


class Interrupting(ChatClient):
    """A real client that is interrupted (as by Ctrl-C) before its n-th request."""

    def __init__(self, url: str, before: int) -> None:
        super().__init__(url, "x", None)
        self.before, self.calls = before, 0

    def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.before:
            raise KeyboardInterrupt
        return super().complete(*args, **kwargs)


def test_a_resumed_run_with_guards_has_the_same_turns(dummy, table, tmp_path):
    server = dummy(corpus=f"{SAID} {INTROS} {SAID}")
    flags = {"turns": "8", "seed": "9", "base_url": server.base_url}

    def run(out: Path, before: int) -> list[dict]:
        t = load_table(table, flags=flags)
        client = Interrupting(server.base_url, before)
        screen = Display(io.StringIO(), io.StringIO())
        try:
            Discussion(t, {p.name: client for p in t.personas}, screen, out).run()
        except KeyboardInterrupt:
            again, resume = load_run(out, {})
            plain = ChatClient(server.base_url, "x", None)
            Discussion(again, {p.name: plain for p in again.personas}, screen, out).run(resume)
        keys = ("index", "speaker", "text", "seed", "guards", "attempts", "finish_reason")
        turns = [r for r in read_records(out / "transcript.jsonl") if r["type"] == "turn"]
        return [{k: r[k] for k in keys} for r in turns]

    whole = run(tmp_path / "whole", 10_000)
    assert any(t["attempts"] > 1 for t in whole)  # the guards re-asked
    # Interrupted after a few re-asked turns, inside a turn's attempts.
    assert run(tmp_path / "resumed", 9) == whole
