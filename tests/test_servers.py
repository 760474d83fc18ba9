"""Whole runs against the dummy server's quirk and fault modes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _loopback import serve, sse

from roundtable.cli import main


def run(table: Path, out: Path, server, *extra: str) -> list[dict]:
    argv = [
        "--table",
        str(table),
        "--out",
        str(out),
        "--seed",
        "5",
        "--base-url",
        server.base_url,
        "--retry-wait",
        "0.01",
        *extra,
    ]
    assert main(argv) == 0
    return [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]


def turns(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r["type"] == "turn"]


def assert_complete(recs: list[dict], n_turns: int) -> None:
    assert recs[-1] == {"type": "end", "status": "completed"}
    ts = turns(recs)
    assert [t["index"] for t in ts] == list(range(n_turns + 1)) and ts[-1]["phase"] == "summary"
    # A turn is empty only when the guards cut all of it (the persona passes).
    assert all(t["text"].strip() or t["finish_reason"] == "guarded_empty" for t in ts)


@pytest.mark.parametrize(
    "config",
    [
        {"quirks": {"no-system-role"}},
        {"quirks": {"alternating-roles"}},
        {"quirks": {"alternating-roles"}, "template_error_status": 500},
        {"quirks": {"no-system-role"}, "template_error_status": 422},
    ],
    ids=["no-system-400", "alternating-400", "alternating-500-llamacpp", "no-system-422-tgi"],
)
def test_strict_templates(dummy, table, tmp_path, capsys, config):
    recs = run(table, tmp_path / "o", dummy(**config), "--turns", "6")
    assert_complete(recs, 6)
    err = capsys.readouterr().err
    assert err.count("using compat mode") == 1  # switched once, kept for the run


def test_long_discussion_fits_a_1024_token_context(dummy, table, tmp_path, capsys):
    recs = run(
        table, tmp_path / "o", dummy(context_window=1024), "--turns", "60", "--max-tokens", "120"
    )
    assert_complete(recs, 60)
    assert recs[0]["context_window"] == 1024  # learned from /v1/models
    assert all(t["prompt_tokens"] + 120 <= 1024 for t in turns(recs))
    # From the stream's usage, or (for replies the client cut short) the server's tokenizer.
    assert {t["tokens_source"] for t in turns(recs)} <= {"stream_usage", "tokenizer"}
    folds = int(re.search(r"(\d+) folds", capsys.readouterr().err).group(1))
    assert 2 <= folds <= 15  # large steps: far fewer folds than turns


def test_a_wrong_context_setting_is_corrected_by_the_server_error(dummy, table, tmp_path, capsys):
    recs = run(
        table,
        tmp_path / "o",
        dummy(context_window=1024),
        "--turns",
        "30",
        "--context-window",
        "8192",
        "--max-tokens",
        "100",
    )
    assert_complete(recs, 30)
    assert "context is full" in capsys.readouterr().err


@pytest.mark.parametrize(
    "config",
    [
        {"fail_rate": 0.3, "seed": 4, "retry_after_ms": 10},
        {"drop_rate": 0.3, "seed": 4},
        {"fail_rate": 0.3, "drop_rate": 0.3, "seed": 9, "retry_after_ms": 10},
    ],
    ids=["fail-0.3", "drop-0.3", "both"],
)
def test_flaky_servers(dummy, table, tmp_path, config):
    assert_complete(
        run(table, tmp_path / "o", dummy(**config), "--turns", "16", "--retries", "8"), 16
    )


def test_flaky_runs_match_a_clean_run(dummy, table, tmp_path):
    clean = turns(run(table, tmp_path / "a", dummy(), "--turns", "10"))
    flaky = turns(
        run(
            table,
            tmp_path / "b",
            dummy(drop_rate=0.3, fail_rate=0.2, seed=3, retry_after_ms=10),
            "--turns",
            "10",
            "--retries",
            "8",
        )
    )
    assert [(t["speaker"], t["text"]) for t in clean] == [(t["speaker"], t["text"]) for t in flaky]


def test_greedy_repetition_is_cut(dummy, table, tmp_path):
    for path in (table / "participants").iterdir():
        text = path.read_text()
        path.write_text(re.sub(r"creativity(\"?):\s*[0-9.]+", r"creativity\1: 0", text))
    recs = run(
        table, tmp_path / "o", dummy(quirks={"ramble"}), "--turns", "6", "--max-tokens", "150"
    )
    ts = turns(recs)
    assert any(t["finish_reason"] == "repetition" for t in ts)
    for t in ts:
        sentences = [
            s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", t["text"]) if len(s) >= 12
        ]
        assert len(sentences) == len(set(sentences)), t["text"]


def test_per_persona_endpoints_models_and_keys(dummy, table, tmp_path, monkeypatch, capsys):
    big = dummy(model="big-model")
    fast = dummy(model="fast-model", api_key="fast-secret-key")
    monkeypatch.setenv("FAST_KEY", "fast-secret-key")
    path = table / "participants" / "role1.json"
    data = json.loads(path.read_text())
    data.update(
        base_url=fast.base_url,
        model="fast-model",
        api_key_env="FAST_KEY",
        top_p=0.9,
        extra_body={"repetition_penalty": 1.1},
    )
    path.write_text(json.dumps(data))
    recs = run(table, tmp_path / "o", big, "--turns", "8", "-v")
    assert_complete(recs, 8)
    assert recs[0]["models"] == {
        "Amara": "fast-model",
        "Ben": "big-model",
        "Chen": "big-model",
        "Dara": "big-model",
    }
    ts = turns(recs)
    assert {t["model"] for t in ts if t["speaker"] == "Amara"} <= {"fast-model"}
    assert {t["model"] for t in ts if t["speaker"] != "Amara"} == {"big-model"}
    out = capsys.readouterr()
    everything = out.out + out.err + (tmp_path / "o" / "transcript.jsonl").read_text()
    assert "fast-secret-key" not in everything
    assert '"top_p": 0.9' in out.err and '"repetition_penalty": 1.1' in out.err


def test_a_llama_cpp_python_like_server_gets_tokenizer_counts_without_a_window(table, tmp_path):
    # No usage when streaming, no window anywhere, a tokenizer at /extras/tokenize/count.
    routes = {
        ("GET", "/v1/models"): (200, {"object": "list", "data": [{"id": "smol"}]}, {}),
        ("POST", "/extras/tokenize/count"): (200, {"count": 7}, {}),
        ("POST", "/v1/chat/completions"): (200, sse("We could", " plant trees."), {}),
    }
    with serve(routes) as (root, seen):
        recs = run(table, tmp_path / "o", type("S", (), {"base_url": root + "/v1"}), "--turns", "3")
    assert recs[0]["context_window"] is None
    assert {t["tokens_source"] for t in turns(recs)} == {"tokenizer"}
    assert all(t["completion_tokens"] == 7 for t in turns(recs))
