"""modelup.sh: flags, messages and the commands it would run (--dry-run; nothing is served)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "modelup.sh"


def modelup(*args: str, path_prefix: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | env
    if path_prefix is not None:
        full_env["PATH"] = f"{path_prefix}:{full_env['PATH']}"
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def test_help():
    proc = modelup("--help")
    assert proc.returncode == 0 and "--cpu [FILE.gguf]" in proc.stdout and "vLLM" in proc.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bogus"], "Error: unknown option '--bogus'"),
        (["--port", "x"], "Error: --port: expected a number"),
        (["--cpu", "--ctx", "10"], "Error: --ctx: must be at least 256"),
        (["--cpu", "/nope/model.gguf"], "Error: /nope/model.gguf: GGUF file not found"),
        ([], "Error: HF_TOKEN is not set: mistralai/Mistral-7B-Instruct-v0.2 is gated"),
    ],
    ids=["flag", "port", "ctx", "gguf", "hf-token"],
)
def test_mistakes_are_one_error_line(args, message):
    proc = modelup(*args, "--dry-run")
    assert proc.returncode == 2 and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_cpu_dry_run_prints_the_server_and_roundtable_commands(tmp_path):
    gguf = tmp_path / "tiny-model.gguf"
    gguf.write_bytes(b"GGUF")
    proc = modelup("--cpu", str(gguf), "--port", "8123", "--ctx", "2048", "--dry-run")
    assert proc.returncode == 0
    assert (
        "python -m roundtable --base-url http://127.0.0.1:8123/v1 --model tiny-model "
        "--context-window 2048"
    ) in proc.stdout
    assert f"-m llama_cpp.server --model {gguf} --model_alias tiny-model" in proc.stdout


def test_gpu_dry_run_uses_vllm_when_installed(tmp_path):
    fake = tmp_path / "vllm"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = modelup(
        "--model",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--port",
        "9000",
        "--dry-run",
        path_prefix=tmp_path,
        HF_TOKEN="hf_secret_value",
    )
    assert proc.returncode == 0
    assert "vllm serve Qwen/Qwen2.5-0.5B-Instruct --host 127.0.0.1 --port 9000" in proc.stdout
    assert "--base-url http://127.0.0.1:9000/v1 --model Qwen/Qwen2.5-0.5B-Instruct" in proc.stdout
    assert "hf_secret_value" not in proc.stdout + proc.stderr
