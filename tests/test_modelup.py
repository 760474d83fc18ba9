"""modelup.sh: flags, messages and the commands it would run (--dry-run; nothing is served)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "modelup.sh"
WHEEL_SCRIPT = REPO / ".ci" / "llama_wheel.sh"


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
        (["--native"], "Error: --native applies to --cpu only"),
    ],
    ids=["flag", "port", "ctx", "gguf", "native-gpu"],
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


def test_without_hf_token_the_real_run_stops_before_starting_anything():
    proc = modelup()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("Error: HF_TOKEN is not set: mistralai/Mistral-7B-Instruct-v0.2")


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def bare_path(tmp_path: Path, docker: str | None) -> Path:
    """A PATH folder with only what the script needs, and a fake docker if given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "grep", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if docker is not None:
        executable(bin_dir / "docker", f"#!/bin/sh\n{docker}\n")
    return bin_dir


MISSING_DOCKER = "modelup: missing: neither vllm nor docker is installed"
NO_ENGINE = "modelup: missing: docker is installed but its engine is not running"
NO_GPU = "modelup: missing: docker has no GPU"


@pytest.mark.parametrize(
    "docker,missing",
    [
        (None, MISSING_DOCKER),
        ("exit 1", NO_ENGINE),
        ('[ "$2" = --format ] && echo \'{"runc":{}}\'; exit 0', NO_GPU),
    ],
    ids=["no-docker", "engine-down", "no-gpu"],
)
def test_gpu_dry_run_prints_the_commands_and_what_is_missing(tmp_path, docker, missing):
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env["PATH"] = str(bare_path(tmp_path, docker))
    proc = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "docker run --rm --gpus all -p 127.0.0.1:8000:8000" in proc.stdout
    assert (
        "python -m roundtable --base-url http://127.0.0.1:8000/v1 --model mistralai/" in proc.stdout
    )
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("modelup: missing: HF_TOKEN is not set")
    assert lines[1].startswith(missing) and len(lines) == 3


def test_gpu_real_run_stops_at_what_is_missing(tmp_path):
    env = dict(os.environ, HF_TOKEN="hf_x", PATH=str(bare_path(tmp_path, "exit 1")))
    proc = subprocess.run(
        [shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2 and "docker run" not in proc.stdout
    assert proc.stderr.startswith("Error: docker is installed but its engine is not running")


# A stand-in for python: logs every call; llama_cpp is missing unless FAKE_HAS_LLAMA=1;
# `pip wheel` writes an empty wheel (or fails with FAKE_BUILD_FAILS=1); scripts on stdin
# (the origin check) print FAKE_ORIGIN.
FAKE_PYTHON = """#!/bin/bash
echo "CMAKE_ARGS=${CMAKE_ARGS:-} $*" >> "$FAKE_LOG"
case "$1 $2" in
    "-c import llama_cpp.server") [ "${FAKE_HAS_LLAMA:-0}" = 1 ]; exit ;;
    "- "*|"- ") cat > /dev/null; echo "${FAKE_ORIGIN:-}"; exit 0 ;;
    "-m pip")
        if [ "$3" = wheel ]; then
            [ "${FAKE_BUILD_FAILS:-0}" = 0 ] || exit 1
            while [ $# -gt 0 ]; do
                [ "$1" = -w ] && : > "$2/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
                shift
            done
        fi
        exit 0 ;;
esac
exit 0
"""


@pytest.fixture
def fake(tmp_path):
    """Environment for modelup.sh / llama_wheel.sh with the fake python; log() reads its calls."""
    python = executable(tmp_path / "fake-python", FAKE_PYTHON)
    log = tmp_path / "calls.log"
    log.touch()
    env = dict(
        PYTHON=str(python), FAKE_LOG=str(log), ROUNDTABLE_WHEEL_CACHE=str(tmp_path / "cache")
    )
    return env, lambda: log.read_text().splitlines()


def wheel_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(WHEEL_SCRIPT)],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=60,
    )


SERVE = "--host 127.0.0.1 --port 8000 --n_ctx 4096"


@pytest.mark.parametrize(
    "flags,cmake_args", [([], "-DGGML_NATIVE=OFF"), (["--native"], "-DGGML_NATIVE=ON")],
    ids=["portable", "native"],
)  # fmt: skip
def test_cpu_builds_llama_cpp_with_its_flags_then_serves(tmp_path, fake, flags, cmake_args):
    env, calls = fake
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    proc = modelup("--cpu", str(gguf), *flags, **env)
    assert proc.returncode == 0, proc.stderr
    wheel = (
        tmp_path
        / "cache"
        / f"llama-cpp-python-0.3.36-{cmake_args}"
        / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    )
    assert calls()[1].startswith(
        f"CMAKE_ARGS={cmake_args} -m pip wheel --quiet --no-cache-dir --no-binary llama-cpp-python"
    )
    assert calls()[2:] == [
        f"CMAKE_ARGS= -m pip install --quiet --force-reinstall --no-deps {wheel}",
        f"CMAKE_ARGS= -m pip install --quiet {wheel}[server]",
        f"CMAKE_ARGS= -m llama_cpp.server --model {gguf} --model_alias tiny {SERVE}",
    ]
    assert f"LLAMA_CMAKE_ARGS={cmake_args}" in proc.stdout


def test_the_wheel_cache_is_keyed_by_flags_and_a_failed_build_caches_nothing(tmp_path, fake):
    env, calls = fake
    native = tmp_path / "cache" / "llama-cpp-python-0.3.36--DGGML_NATIVE=ON"
    native.mkdir(parents=True)
    (native / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl").touch()
    assert wheel_script(env | {"FAKE_BUILD_FAILS": "1"}).returncode != 0
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [native.name]
    assert wheel_script(env).returncode == 0  # builds: the native wheel is never taken
    assert wheel_script(env).returncode == 0  # then reuses its own
    builds = [c for c in calls() if " -m pip wheel " in c]
    assert len(builds) == 2 and all(c.startswith("CMAKE_ARGS=-DGGML_NATIVE=OFF ") for c in builds)
    assert calls()[-1].endswith(
        "llama-cpp-python-0.3.36--DGGML_NATIVE=OFF/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl[server]"
    )


PORTABLE = "llama-cpp-python-0.3.36--DGGML_NATIVE%3DOFF"


@pytest.mark.parametrize(
    "origin,noted",
    [
        ("", True),
        (f'{{"url": "file:///c/roundtable/wheels/{PORTABLE}/x.whl"}}', False),
    ],
    ids=["other-build", "portable-build"],
)  # fmt: skip
def test_cpu_notes_a_llama_cpp_it_did_not_build(tmp_path, fake, origin, noted):
    env, calls = fake
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    proc = modelup("--cpu", str(gguf), "--dry-run", FAKE_HAS_LLAMA="1", FAKE_ORIGIN=origin, **env)
    assert proc.returncode == 0 and not any(" -m pip " in c for c in calls())
    assert (
        "was not installed by modelup; if the server dies with 'Illegal instruction'" in proc.stderr
    ) == noted
