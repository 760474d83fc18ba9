"""End-to-end: the real CLI against the dummy server on an ephemeral loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from roundtable.cli import main

REPO = Path(__file__).resolve().parents[1]


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]


def run(table: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["--table", str(table), "--out", str(out), "--seed", "42", *extra]) == 0
    return records(out)


def test_transcript_structure(dummy, table, tmp_path, capsys):
    server = dummy()
    recs = run(
        table, tmp_path / "o", "--base-url", server.base_url, "--turns", "8", "--wrap-up-turns", "2"
    )
    assert recs[0]["type"] == "run" and recs[-1] == {"type": "end", "status": "completed"}
    assert recs[0]["settings"]["seed"] == 42 and recs[0]["model"] == "markov-dummy"
    turns = [r for r in recs if r["type"] == "turn"]
    assert [t["index"] for t in turns] == list(range(9))
    assert [t["phase"] for t in turns] == ["discussion"] * 6 + ["wrap_up"] * 2 + ["summary"]
    keys = {
        "type",
        "index",
        "speaker",
        "phase",
        "topic",
        "text",
        "temperature",
        "prompt_tokens",
        "completion_tokens",
        "latency_s",
        "finish_reason",
        "tokens_source",
        "model",
        "attempts",
        "guards",
        "seed",
        "entry_tokens",
        "chosen_by",
        "selection",
    }
    assert all(set(t) == keys for t in turns)
    assert all(t["attempts"] >= 1 and isinstance(t["guards"], list) for t in turns)
    names = {"Amara", "Ben", "Chen", "Dara"}
    assert all(t["speaker"] in names and t["text"] and t["prompt_tokens"] > 0 for t in turns)
    assert all(a["speaker"] != b["speaker"] for a, b in zip(turns[:-2], turns[1:-1], strict=False))
    counts = {n: sum(t["speaker"] == n for t in turns[:-1]) for n in names}
    assert counts[turns[-1]["speaker"]] == max(counts.values())
    creativity = {"Amara": 0.6, "Ben": 0.4, "Chen": 0.7, "Dara": 0.9}
    assert all(t["temperature"] == creativity[t["speaker"]] for t in turns)
    md = (tmp_path / "o" / "transcript.md").read_text()
    assert "## Summary" in md and turns[-1]["text"].split("\n")[0] in md
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "Moderator: Our question now:" in out  # not a terminal: no colour


def test_seeded_runs_are_identical(dummy, table, tmp_path):
    server = dummy()
    a = run(table, tmp_path / "a", "--base-url", server.base_url, "--quiet")
    b = run(table, tmp_path / "b", "--base-url", server.base_url, "--quiet", "--no-stream")

    def strip(recs):
        return [(r["speaker"], r["topic"], r["text"]) for r in recs if r["type"] == "turn"]

    assert strip(a) == strip(b) and len(strip(a)) == 13
    c = run(table, tmp_path / "c", "--base-url", server.base_url, "--quiet", "--seed", "43")
    assert strip(c) != strip(a)


def test_every_request_carries_context_participants_and_limits(dummy, table, tmp_path, capsys):
    server = dummy()
    run(
        table,
        tmp_path / "o",
        "--base-url",
        server.base_url,
        "--turns",
        "4",
        "-v",
        "--max-tokens",
        "33",
    )
    err = capsys.readouterr().err
    requests = err.split("--- request ")[1:]
    assert len(requests) == 5
    for req in requests:
        params = json.loads(req.splitlines()[0])
        assert params["max_tokens"] == 33 and len(params["stop"]) == 4
        assert "Background:" in req and all(
            f"- {n}:" in req for n in ("Amara", "Ben", "Chen", "Dara")
        )


def test_offline_mode_says_so_in_one_line(table, tmp_path, capsys):
    run(table, tmp_path / "o", "--offline", "--turns", "3")
    err = capsys.readouterr().err.splitlines()
    assert sum("built-in offline dummy model" in line for line in err) == 1
    assert records(tmp_path / "o")[0]["offline"] is True


def test_quiet_shows_only_the_result_line(table, tmp_path, capsys):
    run(table, tmp_path / "o", "--offline", "--turns", "3", "--quiet")
    shown = capsys.readouterr()
    assert shown.out == "" and shown.err.count("\n") == 1
    assert shown.err.startswith("roundtable: 4 turns, ") and "transcript:" in shown.err


def test_real_subprocess_default_run_in_a_fresh_table(table):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ROUNDTABLE_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "roundtable", "--turns", "3", "--seed", "1"],
        cwd=table,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Amara:" in proc.stdout and "transcript:" in proc.stderr
    assert len(list((table / "outputs").glob("*/transcript.jsonl"))) == 1


TAGGED = "\n".join(
    f"{name}: I think the {thing} matters most here. We should act on the {thing} now."
    for name in ("Amara", "Ben", "Chen", "Dara", "Moderator")
    for thing in ("shade", "budget", "pilot", "data")
)


def test_stop_sequences_and_impersonation_are_cut(dummy, table, tmp_path, capsys):
    # A model that keeps writing other people's lines: stop sequences end most of them at
    # the server, and the reply filter cuts the tags the four stop sequences cannot cover.
    server = dummy(corpus=TAGGED)
    recs = run(table, tmp_path / "o", "--base-url", server.base_url, "--turns", "12", "-v")
    turns = [r for r in recs if r["type"] == "turn"]
    for t in turns:
        for name in ("Amara", "Ben", "Chen", "Dara", "Moderator"):
            assert f"\n{name}:" not in t["text"] and not t["text"].startswith(f"{name}:")
    assert any("impersonation" in t["guards"] for t in turns)  # the filter had work to do
    requests = capsys.readouterr().err.split("--- request ")[1:]
    stops = [json.loads(r.splitlines()[0])["stop"] for r in requests]
    assert len(stops) >= len(turns) and all(len(s) == 4 for s in stops)
    assert all(s[-1] == "\nModerator:" for s in stops)


def test_no_two_turns_share_a_seed_over_a_long_offline_run(table, tmp_path):
    # A re-asked turn once took the next turn's seed, so turns repeated word for word
    # (48 in 1,000). The seeds must never collide.
    recs = run(table, tmp_path / "o", "--offline", "--turns", "200", "--quiet", "--seed", "1")
    turns = [r for r in recs if r["type"] == "turn"]
    assert len(turns) == 201 and any(t["attempts"] > 1 for t in turns)  # re-asks happened
    seeds = [t["seed"] for t in turns]
    assert len(set(seeds)) == len(seeds)
    # A turn whose every attempt only echoed the discussion is a pass (empty); no spoken
    # turn repeats the one spoken before it (the echo guard asks again), passes or not.
    texts = [t["text"] for t in turns if t["text"]]
    assert [i for i in range(1, len(texts)) if texts[i] == texts[i - 1]] == []


def test_offline_says_it_overrides_a_configured_base_url(table, tmp_path, capsys):
    run(table, tmp_path / "o", "--offline", "--base-url", "http://gpu:8000/v1", "--turns", "2")
    err = capsys.readouterr().err
    assert "--offline overrides the configured base URL (http://gpu:8000/v1)" in err
    assert "no server configured" not in err


def test_an_unknown_template_name_is_a_warning_in_run_and_check(table, tmp_path, capsys):
    (table / "prompts" / "sytem.j2").write_text("typo")
    assert main(["check", "--table", str(table)]) == 0
    assert "warning: " in capsys.readouterr().out
    run(table, tmp_path / "o", "--offline", "--turns", "2")
    assert "roundtable: warning: " in capsys.readouterr().err


def test_moderator_lines_and_introductions_are_recorded_for_transcript_md(table, tmp_path):
    recs = run(table, tmp_path / "o", "--offline", "--turns", "3", "--quiet")
    entries = [(r["kind"], r["speaker"]) for r in recs if r["type"] == "entry"]
    assert entries[:5] == [("moderator", "Moderator"), ("introduction", "Amara"),
                           ("introduction", "Ben"), ("introduction", "Chen"),
                           ("introduction", "Dara")]  # fmt: skip
    assert ("moderator", "Moderator") in entries[5:]
    md = (tmp_path / "o" / "transcript.md").read_text()
    assert "Welcome to our roundtable" in md and "block by block" in md


def test_a_personas_own_server_is_used_when_the_table_has_none(dummy, table, tmp_path, capsys):
    # With no table base_url the table falls back to the dummy model, but a persona that
    # names its own server must still be answered by it (it was silently replaced).
    server = dummy(model="dara-model")
    with (table / "participants" / "role4.yaml").open("a") as f:
        f.write(f"\nbase_url: {server.base_url}\n")
    recs = run(table, tmp_path / "o", "--turns", "8", "--seed", "3")
    assert "Dara: their own endpoint" in capsys.readouterr().err
    turns = [r for r in recs if r["type"] == "turn"]
    models = {t["speaker"]: t["model"] for t in turns}
    assert models["Dara"] == "dara-model"
    assert {m for s, m in models.items() if s != "Dara"} == {"markov-dummy"}
    assert recs[0]["offline"] is False  # not every turn came from the dummy model


def test_offline_sends_a_personas_own_server_to_the_dummy_too(dummy, table, tmp_path):
    with (table / "participants" / "role4.yaml").open("a") as f:
        f.write("\nbase_url: http://127.0.0.1:9/v1\n")
    recs = run(table, tmp_path / "o", "--offline", "--turns", "4", "--seed", "3")
    assert {r["model"] for r in recs if r["type"] == "turn"} == {"markov-dummy"}
    assert recs[0]["offline"] is True
