from __future__ import annotations

import json
import shutil

import pytest
from _loopback import serve

from roundtable.cli import main
from roundtable.client import ChatClient
from roundtable.selector import Selector

MODELS = (200, {"object": "list", "data": [{"id": "m", "object": "model"}]}, {})


def answer(text: str) -> tuple[int, dict, dict]:
    body = {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}  # fmt: skip
    return (200, body, {})


def choose(*answers):
    routes = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): list(answers)}
    with serve(routes) as (url, seen):
        client = ChatClient(f"{url}/v1", "k", "m", 5, retries=0)
        try:
            choice = Selector(client).choose(["Ann", "Bob", "Cy"], ["Ann: hi"], seed=1, turn=2)
        finally:
            client.close()
    return choice, [body for method, path, body in seen if path == "/v1/chat/completions"]


@pytest.mark.parametrize(
    "answers,expected,asked",
    [
        ([answer('{"speaker": "Bob"}')], "Bob", 1),
        ([answer("Cy")], "Cy", 1),
        ([answer("Ann and Cy, I think"), answer("Cy")], "Cy", 2),
        ([answer("The moon is made of cheese."), answer("Zed")], None, 2),
    ],
    ids=["schema-json", "plain-name", "two-names-then-one", "junk-twice"],
)
def test_the_selector_takes_exactly_one_candidate(answers, expected, asked):
    choice, sent = choose(*answers)
    assert choice == expected and len(sent) == asked
    schema = sent[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["speaker"]["enum"] == ["Ann", "Bob", "Cy"]
    assert sent[0]["temperature"] == 0 and sent[0]["seed"] != sent[-1]["seed"] or asked == 1


def test_a_server_that_refuses_response_format_is_asked_in_plain_text():
    refused = (400, {"error": {"message": "Unknown parameter: 'response_format'"}}, {})
    choice, sent = choose(refused, answer("Ann"))
    assert choice == "Ann" and "response_format" in sent[0] and "response_format" not in sent[1]


def records(out):
    return [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("policy", ["natural", "round_robin", "random", "llm"])
def test_a_resumed_run_has_the_same_turns_under_every_policy(table, tmp_path, policy):
    argv = ["--table", str(table), "--offline", "--seed", "5", "--turns", "8", "--quiet",
            "--speaker-selection", policy]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    full = records(tmp_path / "full")
    # Cut the run after its fourth turn, as a crash would, and resume it.
    lines = (tmp_path / "full" / "transcript.jsonl").read_text().splitlines(keepends=True)
    cut = [i for i, line in enumerate(lines) if '"type": "turn"' in line][3]
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "transcript.jsonl").write_text("".join(lines[: cut + 1]))
    assert main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0

    def turns(recs):
        return [(r["speaker"], r["chosen_by"], r["selection"], r["text"])
                for r in recs if r["type"] == "turn"]  # fmt: skip

    assert turns(records(tmp_path / "cut")) == turns(full) and len(turns(full)) == 9
    if policy == "round_robin":
        assert [t[0] for t in turns(full)[:4]] == ["Amara", "Ben", "Chen", "Dara"]
    shutil.rmtree(tmp_path / "cut")


def test_a_resume_hands_the_recorded_selections_back_without_asking(dummy, table, tmp_path):
    names = ["Amara", "Ben", "Chen", "Dara"]
    valid = [answer(f'{{"speaker": "{names[i % 4]}"}}') for i in range(7, 200)]
    argv = ["--table", str(table), "--base-url", dummy().base_url, "--seed", "3", "--turns", "8",
            "--quiet", "--speaker-selection", "llm"]  # fmt: skip
    routes = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): valid}
    with serve(routes) as (url, seen):
        out = tmp_path / "full"
        assert main([*argv, "--selector-base-url", f"{url}/v1", "--out", str(out)]) == 0
    chosen = [r["selection"] for r in records(out) if r["type"] == "turn"]
    assert sum(c is not None for c in chosen) >= 4  # the selector's names were used
    lines = (out / "transcript.jsonl").read_text().splitlines(keepends=True)
    cut = [i for i, line in enumerate(lines) if '"type": "turn"' in line][5]
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "transcript.jsonl").write_text("".join(lines[: cut + 1]))
    junk = {("GET", "/v1/models"): MODELS, ("POST", "/v1/chat/completions"): [answer("?")]}
    with serve(junk) as (url, seen):
        resume = ["--resume", str(tmp_path / "cut"), "--quiet", "--selector-base-url", f"{url}/v1",
                  "--base-url", dummy().base_url]  # fmt: skip
        assert main(resume) == 0
        asked = [p for _, p, _ in seen if p == "/v1/chat/completions"]
    resumed = [r for r in records(tmp_path / "cut") if r["type"] == "turn"]
    full = [r for r in records(out) if r["type"] == "turn"]
    assert [r["speaker"] for r in resumed[:6]] == [r["speaker"] for r in full[:6]]
    # Only the turns after the cut asked (twice each: junk, then a re-ask), minus the summary.
    assert len(asked) == 2 * (len(resumed) - 6 - 1)


def test_llama_cpp_python_is_asked_in_its_own_schema_form():
    # Its server answers OpenAI's json_schema type with a 500 (five retries, then plain
    # text); it takes {"type": "json_object", "schema": ...}.
    routes = {("GET", "/v1/models"): MODELS,
              ("POST", "/extras/tokenize"): (200, {"tokens": [1, 2]}, {}),
              ("POST", "/v1/chat/completions"): [answer('{"speaker": "Bob"}')]}  # fmt: skip
    with serve(routes) as (url, seen):
        client = ChatClient(f"{url}/v1", "k", "m", 5, retries=0)
        choice = Selector(client).choose(["Ann", "Bob", "Cy"], ["Ann: hi"], seed=1, turn=2)
        client.close()
    sent = [body for _, path, body in seen if path == "/v1/chat/completions"]
    assert choice == "Bob" and len(sent) == 1
    fmt = sent[0]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["speaker"]["enum"] == ["Ann", "Bob", "Cy"]
