"""The web viewer: time to serve a 1,000-turn run page, and the delay from a line appended
to transcript.jsonl until a server-sent-events client has it.

Usage: python bench/viewer.py [--out FILE] [--turns N] [--repeat N]

Writes a synthetic run (N turns of ~50 words, a moderator line and a new question every
10 turns), serves it with `python -m roundtable view DIR` in its own process (as a user
would), then:
  1. fetches the run page --repeat times (the first fetch is reported apart: it reads the
     file and compiles the templates);
  2. holds an SSE connection open on the still-running run and appends --repeat turns, one
     every 0.3 s, timing each from the write (flushed and fsynced) to the event's arrival.
Targets (ISSUE12): page < 300 ms, push < 500 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[1]
NAMES = ("Amara", "Ben", "Chen", "Dara")
SENTENCE = "Shade on the bus stops costs less than one summer of heatstroke admissions, "


def _turn(index: int, text: str) -> dict[str, Any]:
    return {
        "type": "turn", "index": index, "speaker": NAMES[index % 4], "phase": "discussion",
        "topic": f"Question {index // 10}", "text": text, "temperature": 0.7,
        "prompt_tokens": 900, "completion_tokens": 60, "latency_s": 1.2,
        "finish_reason": "stop", "model": "bench", "attempts": 1, "guards": [], "seed": index,
    }  # fmt: skip


def write_run(run: Path, turns: int) -> None:
    """A running run (its .lock names this process) of `turns` turns."""
    run.mkdir(parents=True)
    people = [{"name": n, "full_name": f"{n}, a participant", "color": None} for n in NAMES]
    run_record = {
        "type": "run", "started": "2026-11-22T00:00:00+00:00", "model": "bench",
        "settings": {"seed": 1}, "participants": people, "questions": ["Who pays?"],
    }  # fmt: skip
    lines = [run_record]
    for i in range(turns):
        if i % 10 == 0:
            lines.append({"type": "entry", "kind": "moderator", "speaker": "Moderator",
                          "text": f"Question {i // 10}: who pays, {NAMES[i % 4]}?"})  # fmt: skip
        lines.append(_turn(i, f"Turn {i}. " + SENTENCE * 4))
    (run / "transcript.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (run / ".lock").write_text(str(os.getpid()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return time.perf_counter() - started, response.status, len(body)


def page_times(port: int, path: str, repeat: int) -> dict[str, Any]:
    """Time fetching a page, cold and then warm."""
    first, status, size = _get(port, path)
    assert status == 200, status
    warm = [_get(port, path)[0] for _ in range(repeat)]
    return {
        "bytes": size,
        "first_ms": round(first * 1000, 1),
        "median_ms": round(statistics.median(warm) * 1000, 1),
        "p95_ms": round(sorted(warm)[int(0.95 * (len(warm) - 1))] * 1000, 1),
        "max_ms": round(max(warm) * 1000, 1),
    }


def push_delays(port: int, run: Path, turns: int, repeat: int) -> dict[str, Any]:
    """Append `repeat` turns; time each from its write to its SSE event."""
    offset = (run / "transcript.jsonl").stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/events/{run.name}?offset={offset}")
    response = conn.getresponse()
    assert response.status == 200, response.status
    arrived: dict[int, float] = {}

    def read() -> None:
        while len(arrived) < repeat:
            line = response.fp.readline()
            if not line:
                return
            if line.startswith(b"data:") and b'"new_turn": true' in line:
                arrived[len(arrived)] = time.perf_counter()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # the connection is open and following
    written = []
    jitter = random.Random(0)
    with (run / "transcript.jsonl").open("a", encoding="utf-8") as f:
        for n in range(repeat):
            f.write(json.dumps(_turn(turns + n, f"Appended {n}. " + SENTENCE)) + "\n")
            f.flush()
            os.fsync(f.fileno())
            written.append(time.perf_counter())
            time.sleep(0.3 + jitter.uniform(0, 0.1))  # no phase lock with the server's polls
    reader.join(timeout=5)
    conn.close()
    delays = [arrived[n] - written[n] for n in range(len(arrived))]
    assert len(delays) == repeat, f"only {len(delays)} of {repeat} turns arrived"
    return {
        "events": len(delays),
        "median_ms": round(statistics.median(delays) * 1000, 1),
        "max_ms": round(max(delays) * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "viewer.json")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = root / "run"
        write_run(run, args.turns)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "roundtable", "view", str(root), "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the viewer did not start"
                    time.sleep(0.05)
            page = page_times(port, "/run/run", args.repeat)
            index = page_times(port, "/", args.repeat)
            push = push_delays(port, run, args.turns, args.repeat)
        finally:
            server.terminate()
            server.wait()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "turns": args.turns,
        "run_page": page,
        "index_page": index,
        "sse_push": push,
        "targets": {"run_page_ms": 300, "push_ms": 500},
    }
    print(f"run page ({args.turns} turns, {page['bytes'] / 1e6:.2f} MB): first "
          f"{page['first_ms']} ms, median {page['median_ms']} ms, p95 {page['p95_ms']} ms "
          "(target < 300 ms)")  # fmt: skip
    print(f"index page: median {index['median_ms']} ms")
    print(f"SSE push, line written -> event received: median {push['median_ms']} ms, max "
          f"{push['max_ms']} ms over {push['events']} turns (target < 500 ms)")  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
