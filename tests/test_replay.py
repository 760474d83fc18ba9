"""Resume replays a run from its records alone: the same requests, no model or tokenizer call."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from roundtable.cli import main
from roundtable.transcript import read_records

ARGS = ["--seed", "5", "--turns", "18", "--context-window", "800", "--max-tokens", "60"]


class Recorder:
    """A loopback proxy in front of the dummy server that records every request's body."""

    def __init__(self, upstream: str) -> None:
        self.log: list[tuple[str, bytes]] = []
        target = urlsplit(upstream)
        log = self.log

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                log.append((self.path, body))
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body or None, headers)
                answer = conn.getresponse()
                data = answer.read()  # whole: a buffered stream is still a valid stream
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type", ""))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def chats(self) -> list[bytes]:
        return [body for path, body in self.log if path.endswith("/chat/completions")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder(dummy):
    made: list[Recorder] = []

    def start(window: int = 800) -> Recorder:
        server = dummy(context_window=window)
        made.append(Recorder(server.base_url.removesuffix("/v1")))
        return made[-1]

    yield start
    for r in made:
        r.close()


def cut_after_turn(jsonl: Path, last: int, keep_next_fold: bool) -> None:
    """What a kill -9 leaves: the records up to turn `last` (and maybe the next turn's fold)."""
    lines = jsonl.read_text().splitlines(keepends=True)
    kinds = [json.loads(x) for x in lines]
    end = next(i for i, r in enumerate(kinds) if r["type"] == "turn" and r["index"] == last) + 1
    if keep_next_fold:
        while kinds[end]["type"] == "entry":  # the moderator's lines before the next turn
            end += 1
        assert kinds[end]["type"] == "fold"  # the next turn folded, then the run died
        end += 1
    jsonl.write_text("".join(lines[:end]))


@pytest.mark.parametrize("keep_next_fold", [False, True], ids=["after-turn", "after-a-fold"])
def test_resume_of_a_folded_run_sends_the_same_requests(recorder, table, tmp_path, keep_next_fold):
    ref = recorder()
    argv = ["--table", str(table), *ARGS, "--fold-summary", "model", "--quiet"]
    assert main([*argv, "--base-url", ref.base_url, "--out", str(tmp_path / "ref")]) == 0
    records = read_records(tmp_path / "ref" / "transcript.jsonl")
    folds = [r for r in records if r["type"] == "fold"]
    assert len(folds) >= 2 and {f["by"] for f in folds} == {"model"}
    last = folds[1]["before_turn"] - 1  # one fold before the cut, one after it
    out = tmp_path / "run"
    shutil.copytree(tmp_path / "ref", out)
    cut_after_turn(out / "transcript.jsonl", last, keep_next_fold)
    again = recorder()
    assert main(["--resume", str(out), "--base-url", again.base_url, "--quiet"]) == 0

    # The resumed session asked the model exactly what the uninterrupted run asked after
    # turn `last`, byte for byte, and nothing for the replayed turns.
    later = [r for r in records if r["type"] == "turn" and r["index"] > last]
    expected = sum(r["attempts"] for r in later) + sum(f["before_turn"] > last for f in folds)
    assert len(again.chats()) == expected
    assert again.chats() == ref.chats()[-expected:]
    # Its tokenizer calls are among the uninterrupted run's after that turn (plus the
    # system text, counted once per session): none recounts a replayed entry whose count
    # was recorded. An entry the run had not counted yet when its turn was recorded (a null
    # in entry_tokens: entries are counted only near the window) may be counted, once.
    boundary = [i for i, (p, _) in enumerate(ref.log) if p.endswith("/chat/completions")]
    tail = [body for path, body in ref.log[boundary[-expected - 1] + 1 :] if "tokenize" in path]
    counted = [body for path, body in again.log if path.endswith("tokenize")]
    system = json.loads(ref.chats()[0])["messages"][0]["content"]
    once = {b for p, b in ref.log if "tokenize" in p and json.loads(b)["prompt"] == system}
    replayed = [r for r in records if r["type"] == "turn" and r["index"] <= last]
    unrecorded = [c for r in replayed for c in r["entry_tokens"] if c is None]
    said = [r["text"] for r in records[: records.index(replayed[-1]) + 1] if "text" in r]
    extra = [b for b in counted if b not in set(tail) | once]
    assert len(extra) == len(set(extra)) <= len(unrecorded)
    assert all(any(json.loads(b)["prompt"].endswith(t) for t in said) for b in extra)
    assert counted and len(counted) <= len(tail) + 1 + len(extra)
    mine = [r for r in read_records(out / "transcript.jsonl") if r["type"] == "turn"]
    theirs = [r for r in records if r["type"] == "turn"]
    strip = [(r["index"], r["text"], r["prompt_tokens"], r["seed"]) for r in theirs]
    assert [(r["index"], r["text"], r["prompt_tokens"], r["seed"]) for r in mine] == strip
    if keep_next_fold:
        # Resumed again, past the orphaned fold and the resume line: it is not applied twice.
        cut_after_turn(out / "transcript.jsonl", last + 2, keep_next_fold=False)
        third = recorder()
        assert main(["--resume", str(out), "--base-url", third.base_url, "--quiet"]) == 0
        later = [r for r in records if r["type"] == "turn" and r["index"] > last + 2]
        expected = sum(r["attempts"] for r in later) + sum(
            f["before_turn"] > last + 2 for f in folds
        )
        assert third.chats() == ref.chats()[-expected:]


def rewrite(jsonl: Path, keep_turns: int, change) -> None:
    """Keep the run line and the first turns, each changed by `change`."""
    records = read_records(jsonl)
    turns = [r for r in records if r["type"] == "turn"][:keep_turns]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [records[0], *map(change, turns)]))


def without_counts(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("attempts", "guards", "seed", "entry_tokens")}


@pytest.mark.parametrize(
    "change,code,message",
    [
        (without_counts, 0, ""),
        (lambda r: {**r, "entry_tokens": [*r["entry_tokens"], 5]}, 2, "do not match the run"),
        (lambda r: {**r, "speaker": "Nobody"}, 2, "does not match what the moderator decides"),
    ],
    ids=["older-transcript", "edited-counts", "edited-speaker"],
)
def test_resume_of_older_or_edited_transcripts(table, tmp_path, capsys, change, code, message):
    out = tmp_path / "o"
    argv = ["--table", str(table), "--offline", "--turns", "6", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    rewrite(out / "transcript.jsonl", 3, change)
    capsys.readouterr()
    assert main(["--resume", str(out), "--quiet"]) == code
    assert message in capsys.readouterr().err


def test_a_run_stopped_before_its_first_turn_resumes_with_its_opening(table, tmp_path):
    argv = ["--table", str(table), "--offline", "--seed", "4", "--turns", "3", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    lines = (tmp_path / "full" / "transcript.jsonl").read_text().splitlines(keepends=True)
    first = next(i for i, x in enumerate(lines) if '"type": "turn"' in x)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "transcript.jsonl").write_text("".join(lines[:first]))
    assert main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0

    def turns(out):
        recs = read_records(out / "transcript.jsonl")
        return [(r["speaker"], r["text"], r["prompt_tokens"]) for r in recs if r["type"] == "turn"]

    assert turns(tmp_path / "cut") == turns(tmp_path / "full")


@pytest.mark.parametrize(
    "phase,previous,expected",
    [
        ("discussion", "discussion", [("invite", None, "Ben")]),
        ("wrap_up", "discussion", [("wrap_up", None, None)]),
        ("wrap_up", "wrap_up", []),
    ],
    ids=["discussion-invites-by-name", "wrap-up-asks-everyone", "later-wrap-up-turn"],
)
def test_the_moderator_invites_by_name_only_before_the_wrap_up(phase, previous, expected):
    # "Please give your closing remarks" then "Let's hear another voice" contradicted itself.
    from roundtable.moderator import Phase, TurnPlan
    from roundtable.replay import announcements

    plan = TurnPlan(index=9, speaker="Ben", phase=Phase(phase), topic="Q?", topic_index=0,
                    new_topic=False, ask=None, turns_left=2, reason="invited")  # fmt: skip
    assert announcements(plan, Phase(previous)) == expected


def test_far_from_the_window_a_run_and_its_resume_count_no_entry(recorder, table, tmp_path):
    # With room to spare (the dummy's 32768-token window), the bound on every entry shows
    # that the prompt fits: the tokenizer counts the system text, not the discussion.
    ref = recorder(32768)
    argv = ["--table", str(table), "--seed", "5", "--turns", "8", "--quiet"]
    assert main([*argv, "--base-url", ref.base_url, "--out", str(tmp_path / "ref")]) == 0
    counted = [json.loads(b)["prompt"] for p, b in ref.log if p.endswith("tokenize")]
    system = json.loads(ref.chats()[0])["messages"][0]["content"]
    assert system in counted and len(counted) <= 2  # the system text, and the route's probe
    records = read_records(tmp_path / "ref" / "transcript.jsonl")
    turns = [r for r in records if r["type"] == "turn"]
    assert len(turns) == 9 and all(set(t["entry_tokens"]) == {None} for t in turns[1:])
    # Resumed after turn 3: the same requests, and still no entry counted.
    out = tmp_path / "run"
    shutil.copytree(tmp_path / "ref", out)
    cut_after_turn(out / "transcript.jsonl", 3, keep_next_fold=False)
    again = recorder(32768)
    assert main(["--resume", str(out), "--base-url", again.base_url, "--quiet"]) == 0
    later = sum(t["attempts"] for t in turns[4:])
    assert again.chats() == ref.chats()[-later:]
    counted = [json.loads(b)["prompt"] for p, b in again.log if p.endswith("tokenize")]
    assert system in counted and len(counted) <= 2  # the first count finds the route
