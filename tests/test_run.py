"""The run loop with fake clients: no HTTP, scripted replies."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fake_client import FakeClient, echo_script

from roundtable.display import Display
from roundtable.run import Discussion, RunResult
from roundtable.table import load_run, load_table
from roundtable.transcript import read_records


def screen() -> Display:
    return Display(io.StringIO(), io.StringIO())


def discussion(table: Path, out: Path, clients=None, summary=None, **flags) -> Discussion:
    t = load_table(table, flags={"turns": "6", "seed": "3", **flags})
    client = FakeClient()
    clients = clients or {p.name: client for p in t.personas}
    return Discussion(t, clients, screen(), out, summary_client=summary)


def kinds(out: Path) -> list[str]:
    # Entry lines (moderator, introductions) are for readers; these tests follow the rest.
    return [r["type"] for r in read_records(out / "transcript.jsonl") if r["type"] != "entry"]


def test_records_come_in_order_and_folds_are_recorded_before_their_turn(table, tmp_path):
    out = tmp_path / "o"
    result = discussion(table, out, turns="30", context_window="700", max_tokens="60").run()
    records = read_records(out / "transcript.jsonl")
    assert kinds(out)[0] == "run" and records[-1] == {"type": "end", "status": "completed"}
    turns = [r for r in records if r["type"] == "turn"]
    assert [t["index"] for t in turns] == list(range(31)) and result.turns == 31
    folds = [i for i, r in enumerate(records) if r["type"] == "fold"]
    assert folds and result.folds == len(folds)
    for i in folds:
        after = next(r for r in records[i:] if r["type"] == "turn")
        assert records[i]["before_turn"] == after["index"] and records[i]["recap"]


def test_attempts_guards_and_seeds_are_recorded(table, tmp_path):
    def script(number, request):
        return "" if number == 0 else echo_script(number, request)

    out = tmp_path / "o"
    t = load_table(table, flags={"turns": "2", "seed": "3"})
    client = FakeClient(script)
    Discussion(t, {p.name: client for p in t.personas}, screen(), out).run()
    first, second = [r for r in read_records(out / "transcript.jsonl") if r["type"] == "turn"][:2]
    assert (first["attempts"], first["guards"]) == (2, ["empty"])
    assert first["seed"] == client.requests[1]["seed"] != client.requests[0]["seed"]
    assert (second["attempts"], second["guards"]) == (1, [])


@pytest.mark.parametrize("stop", [KeyboardInterrupt, BrokenPipeError], ids=["ctrl-c", "pipe"])
def test_an_interrupt_writes_end_interrupted_and_keeps_the_finished_turns(table, tmp_path, stop):
    def script(number, request):
        return stop() if number == 3 else echo_script(number, request)

    out = tmp_path / "o"
    t = load_table(table, flags={"turns": "6", "seed": "3"})
    client = FakeClient(script)
    with pytest.raises(stop):
        Discussion(t, {p.name: client for p in t.personas}, screen(), out).run()
    assert kinds(out) == ["run", "turn", "turn", "turn", "end"]
    assert read_records(out / "transcript.jsonl")[-1] == {"type": "end", "status": "interrupted"}


def test_each_endpoint_counts_its_own_personas_and_the_table_writes_summaries(table, tmp_path):
    t = load_table(table, flags={"turns": "30", "seed": "3", "context_window": "700",
                                 "max_tokens": "60", "fold_summary": "model"})  # fmt: skip
    mine, theirs, host = FakeClient(name="a"), FakeClient(name="b"), FakeClient(name="t")
    clients = {p.name: (mine if i == 0 else theirs) for i, p in enumerate(t.personas)}
    first = t.personas[0].name
    out = tmp_path / "o"
    Discussion(t, clients, screen(), out, summary_client=host).run()
    records = read_records(out / "transcript.jsonl")
    assert records[0]["summary_client"] == host.where
    assert mine.probed == theirs.probed == host.probed == 1  # every endpoint, before turn 1
    others = tuple(f"{p.name}: " for p in t.personas[1:])
    assert [x for x in mine.counted if x.startswith(f"{first}: ")]
    assert [x for x in theirs.counted if x.startswith(others)]
    assert not [x for x in theirs.counted if x.startswith(f"{first}: ")]
    assert not [x for x in mine.counted if x.startswith(others)]
    assert not [x for x in mine.counted if x.startswith("Moderator: ")]
    assert [x for x in host.counted if x.startswith("Moderator: ")]
    summaries = [r for r in host.requests if not r["stream"] and r["max_tokens"] <= 60]
    folds = [r for r in records if r["type"] == "fold"]
    assert folds and {f["by"] for f in folds} == {"model"} and len(summaries) >= len(folds)
    assert not [r for r in mine.requests + theirs.requests if "Summarise only" in str(r)]


def test_no_introductions_reaches_the_opening_line(table, tmp_path, monkeypatch):
    d = discussion(table, tmp_path / "o", introductions="false")
    seen = []
    original = d.prompts.moderator

    def moderator(event, question, speaker=None, **kw):
        seen.append((event, kw.get("introductions")))
        return original(event, question, speaker, **kw)

    monkeypatch.setattr(d.prompts, "moderator", moderator)
    d.run()
    assert ("opening", False) in seen


def test_resume_reports_whole_run_totals_and_records_the_endpoint(table, tmp_path):
    def script(number, request):
        return KeyboardInterrupt() if number == 3 else echo_script(number, request)

    out = tmp_path / "o"
    t = load_table(table, flags={"turns": "6", "seed": "3"})
    first = FakeClient(script)
    with pytest.raises(KeyboardInterrupt):
        Discussion(t, {p.name: first for p in t.personas}, screen(), out).run()
    table2, resume = load_run(out, {})
    client = FakeClient(name="again")
    clients = {p.name: client for p in table2.personas}
    result = Discussion(table2, clients, screen(), out).run(resume)
    turns = [r for r in read_records(out / "transcript.jsonl") if r["type"] == "turn"]
    assert (result.turns, result.session_turns) == (7, 4) and len(turns) == 7
    assert result.prompt_tokens == sum(r["prompt_tokens"] for r in turns)
    assert "7 turns (4 added by this session)" in result.line()
    resumed = next(r for r in read_records(out / "transcript.jsonl") if r["type"] == "resume")
    assert resumed["base_url"] == client.where and resumed["turns_done"] == 3
    replayed = [r["text"] for r in turns[:3]]
    assert not [x for x in client.counted if any(text in x for text in replayed)]


@pytest.mark.parametrize("folds,text", [(0, "s;"), (1, "s, 1 fold;"), (2, "s, 2 folds;")],
                         ids=["none", "one", "two"])  # fmt: skip
def test_the_result_line_counts_folds_in_words(folds, text):
    line = RunResult(Path("o"), 5, 10, 2, "usage", 0.1, folds, 5).line()
    assert f"0.1 {text}" in line and "added by this session" not in line


def test_an_unused_table_endpoint_is_neither_checked_nor_asked(table, tmp_path):
    t = load_table(table, flags={"turns": "4", "seed": "3", "context_window": "700"})
    persona, host = FakeClient(name="p"), FakeClient(name="t")
    out = tmp_path / "o"
    Discussion(t, {p.name: persona for p in t.personas}, screen(), out, summary_client=host).run()
    assert (host.probed, host.counted, host.requests) == (0, [], [])
    assert [x for x in persona.counted if x.startswith("Moderator: ")]
