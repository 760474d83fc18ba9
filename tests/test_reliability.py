"""Crash safety, interrupts and resume, on real subprocesses against the dummy server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roundtable.cli import main
from roundtable.transcript import read_records

TURNS = "8"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ROUNDTABLE_"))}


def start(table: Path, out: Path, url: str, *extra: str) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "roundtable",
        "--table",
        str(table),
        "--out",
        str(out),
        "--base-url",
        url,
        "--seed",
        "21",
        "--turns",
        TURNS,
        "--retry-wait",
        "0.01",
        *extra,
    ]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )


def wait_for_turns(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / "transcript.jsonl"
        if path.exists() and sum(r["type"] == "turn" for r in read_records(path)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run did not reach the turn in time")


def turns(out: Path) -> list[tuple[int, str, str]]:
    return [
        (r["index"], r["speaker"], r["text"])
        for r in read_records(out / "transcript.jsonl")
        if r["type"] == "turn"
    ]


@pytest.fixture
def paced(dummy):
    # Slow enough that a signal lands mid-run, fast enough for a test.
    return dummy(tokens_per_second=150)


@pytest.fixture
def reference(paced, table, tmp_path) -> list[tuple[int, str, str]]:
    """The same seeded run, never interrupted."""
    argv = [
        "--table",
        str(table),
        "--out",
        str(tmp_path / "ref"),
        "--base-url",
        paced.base_url,
        "--seed",
        "21",
        "--turns",
        TURNS,
        "--quiet",
    ]
    assert main(argv) == 0
    return turns(tmp_path / "ref")


def resume(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "roundtable", "--resume", str(out), "--quiet", *extra],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_saves_turns_prints_resume_command_and_resume_matches(
    paced, table, tmp_path, reference, sig
):
    out = tmp_path / "run"
    proc = start(table, out, paced.base_url)
    wait_for_turns(out, 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"Resume with: python -m roundtable --resume {out}" in err and "Traceback" not in err
    records = read_records(out / "transcript.jsonl")
    assert records[-1] == {"type": "end", "status": "interrupted"}
    done = turns(out)
    assert 3 <= len(done) < len(reference) and done == reference[: len(done)]
    again = resume(out)
    assert again.returncode == 0, again.stderr
    assert turns(out) == reference  # same turns, none duplicated or skipped
    assert read_records(out / "transcript.jsonl")[-1] == {"type": "end", "status": "completed"}


def killed_after(table: Path, out: Path, url: str, n: int) -> None:
    """Start a run and kill -9 it once n turns are on disk."""
    proc = start(table, out, url)
    wait_for_turns(out, n, proc)
    proc.kill()
    proc.communicate(timeout=30)


def test_kill_9_loses_at_most_the_turn_in_progress(paced, table, tmp_path, reference):
    out = tmp_path / "run"
    killed_after(table, out, paced.base_url, 2)
    done = turns(out)
    assert done == reference[: len(done)] and len(done) >= 2
    # A crash in the middle of a write leaves a torn line: tolerated, then cut away.
    with (out / "transcript.jsonl").open("a") as f:
        f.write('{"type": "turn", "index": 9')
    assert turns(out) == done
    again = resume(out)
    assert again.returncode == 0, again.stderr
    assert turns(out) == reference


def test_server_down_fails_cleanly_and_the_run_resumes_elsewhere(dummy, table, tmp_path, reference):
    server = dummy(tokens_per_second=150)
    out = tmp_path / "run"
    proc = start(table, out, server.base_url, "--retries", "1")
    wait_for_turns(out, 2, proc)
    server.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = [x for x in err.splitlines() if x.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"Error: {server.base_url}: unreachable after 2 attempts")
    assert lines[0].endswith(f"resume with: python -m roundtable --resume {out}")
    assert read_records(out / "transcript.jsonl")[-1]["status"] == "failed"
    other = dummy()
    again = resume(out, "--base-url", other.base_url)
    assert again.returncode == 0, again.stderr
    assert turns(out) == reference


def test_resume_a_completed_run_says_so(table, tmp_path, capsys):
    out = tmp_path / "done"
    assert (
        main(["--table", str(table), "--offline", "--turns", "2", "--out", str(out), "--quiet"])
        == 0
    )
    capsys.readouterr()
    assert main(["--resume", str(out)]) == 0
    assert "already complete (3 turns); nothing to resume" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--turns", "20"], "--turns: cannot be changed when resuming"),
        (["--out", "x"], "--out: a resumed run continues in its own directory"),
    ],
    ids=["turns", "out"],
)
def test_resume_refuses_to_change_the_discussion(table, tmp_path, capsys, argv, message):
    out = tmp_path / "done"
    assert (
        main(["--table", str(table), "--offline", "--turns", "2", "--out", str(out), "--quiet"])
        == 0
    )
    capsys.readouterr()
    assert main(["--resume", str(out), *argv]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {message}")


def test_resume_of_a_missing_or_foreign_directory(tmp_path, capsys):
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no transcript.jsonl here" in capsys.readouterr().err
    (tmp_path / "transcript.jsonl").write_text('{"type": "turn"}\n')
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no complete run record on line 1" in capsys.readouterr().err


def test_resume_uses_the_recorded_files_not_the_edited_ones(paced, table, tmp_path, reference):
    out = tmp_path / "run"
    killed_after(table, out, paced.base_url, 2)
    for name in ("participants", "task", "prompts"):
        for f in (table / name).iterdir():
            f.write_text("broken {{")  # the table changed since: the run does not care
    again = resume(out)
    assert again.returncode == 0, again.stderr
    assert turns(out) == reference


def test_a_closed_pipe_stops_quietly_and_the_run_can_resume(table, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "roundtable", "--table", str(table), "--out", str(out),
            "--offline", "--seed", "4", "--turns", "40"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 0 and "Traceback" not in err and "Exception ignored" not in err
    assert read_records(out / "transcript.jsonl")[-1] == {"type": "end", "status": "interrupted"}
    assert resume(out).returncode == 0
    assert read_records(out / "transcript.jsonl")[-1]["status"] == "completed"


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda t: (t / "taken").write_text("x") and t / "taken", "a file is in the way"),
        (lambda t: (t / "file").write_text("x") and t / "file" / "run", "path is a file"),
        (lambda t: Path("/proc/roundtable-test/run"), "cannot create the run directory"),
        (lambda t: (t / "table" / "outputs").write_text("x") and None, "path is a file"),
    ],
    ids=["file", "under-a-file", "unwritable", "outputs-is-a-file"],
)  # fmt: skip
def test_an_out_dir_that_cannot_be_made_is_one_error_line(table, tmp_path, capsys, make, message):
    out = make(tmp_path)
    argv = ["--table", str(table), "--offline", "--turns", "2", "--quiet"]
    assert main([*argv, *(["--out", str(out)] if out else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1


def test_a_run_directory_in_use_is_refused(table, tmp_path, capsys):
    from roundtable.transcript import RunLock

    out = tmp_path / "run"
    argv = ["--table", str(table), "--offline", "--turns", "2", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    (out / "transcript.jsonl").write_text(
        "".join(x for x in (out / "transcript.jsonl").read_text().splitlines(True)[:-2])
    )  # unfinished, so resumable
    capsys.readouterr()
    held = RunLock(out)  # another roundtable (a lock on its own open file, as a process has)
    try:
        assert main(["--resume", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"Error: {out}: in use by another roundtable (pid {os.getpid()})\n"
        )
        assert main([*argv, "--out", str(out)]) == 2
        assert "in use by another roundtable" in capsys.readouterr().err
    finally:
        held.release()
    assert main(["--resume", str(out / "transcript.jsonl"), "--quiet"]) == 0  # free again


@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "configuration"])
def test_only_resumable_server_errors_suggest_resuming(
    table, tmp_path, capsys, monkeypatch, resumable
):
    import roundtable.run
    from roundtable.errors import ServerError

    real = roundtable.run.take_turn
    calls = []

    def take_turn(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            exc = ServerError("http://x/v1: HTTP 400: bad parameter")
            exc.resumable = resumable  # type: ignore[attr-defined]
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(roundtable.run, "take_turn", take_turn)
    out = tmp_path / "run"
    assert main(["--table", str(table), "--offline", "--turns", "4", "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("Error: http://x/v1: HTTP 400: bad parameter")
    assert ("resume with:" in err) is resumable


def test_a_run_that_fails_before_its_first_record_leaves_no_directory(table, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--table", str(table), "--base-url", "http://127.0.0.1:9/v1", "--retries", "0"]
    assert main([*argv, "--out", str(out)]) == 1
    assert "unreachable" in capsys.readouterr().err and not out.exists()
