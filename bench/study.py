"""Studies at scale: concurrency speed-up, client CPU per turn, memory, several endpoints.

Usage: python bench/study.py [--out FILE] [--quick] [--cpu-only]

Starts paced dummy servers in their own processes (`--latency-ms 300 --tokens-per-second
30`: every reply waits 0.3 s, then streams at 30 tokens/s; max_tokens 60), then runs
studies of 8-turn discussions of the example table in this process:
  1. 32 discussions at concurrency 16 vs 1 (wall time; the speed-up);
  2. 64 discussions on 1 endpoint vs 4 endpoints (4 server processes), concurrency 16
     each (turns per second), and roundtable's own CPU per turn at concurrency 64 (the
     median of 3 such studies: one study's figure varies by 10-20% on a shared VM);
  3. peak memory (max RSS) of a study of 1,000 runs, stopped after 20 s (a child process).
Also: the 4-endpoint study with each run's thread reading its own streams (no pump: what
a watched run does), and with `stream: false` (whole replies: the least client CPU).

CPU is this process's CPU time (user + system, every thread; the servers run in their own
processes). Per turn is the run phase only (runner.execute(): every run from its table to
its runs.csv row, metrics included) divided by the turns; the fixed costs are reported
beside it, not hidden: start-up (interpreter and imports), planning (reading the
experiment, expanding it, making the runner) and building report.md with its plots. The
servers count the requests they get (GET /stats/paths): requests per turn by path.
--quick runs 8 instead of 32 discussions at concurrency 1 and scales the time up
(sequential runs take the same time each): say so when quoting it. --cpu-only runs only
the three 4-endpoint studies (the CPU figures) and prints them, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from roundtable.study.plan import expand  # noqa: E402
from roundtable.study.progress import Progress  # noqa: E402
from roundtable.study.runner import make_runner  # noqa: E402
from roundtable.study.spec import load_experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACING = ["--latency-ms", "300", "--tokens-per-second", "30"]
CPU_REPEATS = 3  # streamed 4-endpoint studies; their median gives the CPU per turn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_servers(n: int) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """n paced dummy servers, each its own process; returns them and their base URLs."""
    procs, urls = [], []
    for _ in range(n):
        port = _free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dummy_server", "--port", str(port), "--quiet", *PACING],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}/v1")
    for url in urls:
        for _ in range(200):
            try:
                urllib.request.urlopen(url.replace("/v1", "/health"), timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
    return procs, urls


def experiment(
    where: Path, urls: list[str], concurrency: int, runs: int, stream: bool = True
) -> Path:
    """An experiment file: `runs` seeded 8-turn discussions over the endpoints."""
    endpoints = "".join(f"  - {{base_url: '{u}', concurrency: {concurrency}}}\n" for u in urls)
    path = where / f"exp-{len(urls)}x{concurrency}-{runs}-{stream}.yaml"
    path.write_text(
        f"name: bench\ntable: {REPO}\nseeds: {runs}\n"
        "settings: {turns: 8, wrap_up_turns: 1, max_tokens: 60, retries: 2, "
        f"stream: {str(stream).lower()}}}\n"
        f"endpoints:\n{endpoints}",
        encoding="utf-8",
    )
    return path


def asked(urls: list[str]) -> dict[str, int]:
    """Requests the servers got so far, by method and path, summed over the servers."""
    total: dict[str, int] = {}
    for url in urls:
        with urllib.request.urlopen(url.replace("/v1", "/stats/paths"), timeout=5) as answer:
            for path, n in json.load(answer).items():
                total[path] = total.get(path, 0) + n
    return total


def run(
    path: Path,
    out: Path,
    stop_after: float | None = None,
    urls: list[str] | None = None,
    report: bool = False,
    gather: float | None = None,
) -> dict[str, Any]:
    """Run a study; returns wall seconds, this process's CPU seconds (planning, the run
    phase, the report), turns done and (with `urls`) the servers' requests per turn."""
    before = asked(urls) if urls else {}
    cpu = time.process_time()
    exp = load_experiment(path)
    progress = Progress(enabled=False)
    runner = make_runner(exp, expand(exp), out, progress=progress)
    if gather is not None:
        runner.gather = gather  # 0: each run's thread reads its own streams (no pump)
    plan_cpu = time.process_time() - cpu
    if stop_after is not None:
        threading.Timer(stop_after, runner.stop.set).start()
    wall, cpu = time.perf_counter(), time.process_time()
    code = runner.execute()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    turns = max(progress.turns, 1)
    result: dict[str, Any] = {
        "exit": code,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "plan_cpu_s": round(plan_cpu, 3),
        "turns": progress.turns,
        "completion_tokens": progress.tokens_out,
        "runs_done": progress.done,
        "turns_per_s": round(progress.turns / wall, 2),
        "cpu_ms_per_turn": round(1000 * cpu / turns, 3),
    }
    if urls:
        after = asked(urls)
        result["requests_per_turn"] = {
            k: round((after[k] - before.get(k, 0)) / turns, 2)
            for k in sorted(after)
            if after[k] != before.get(k, 0) and "/stats" not in k
        }
    if report:
        from roundtable.study.report import build

        cpu = time.process_time()
        build(out)
        result["report_cpu_s"] = round(time.process_time() - cpu, 2)
    return result


def memory_child(url: str) -> None:
    """In a child process: 1,000 queued runs at concurrency 16 for 20 s; print max RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = experiment(Path(tmp), [url], 16, 1000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = run(path, Path(tmp) / "out", stop_after=20)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                **result,
                "rss_before_mb": round(before / 1024, 1),
                "peak_rss_mb": round(peak / 1024, 1),
            }
        )
    )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so the servers are stopped on the way out


def cpu_studies(t: Path, urls: list[str]) -> dict[str, Any]:
    """The 4-endpoint studies at concurrency 64 (the CPU figures): streamed (read by the
    pump, as studies do), streamed with each thread reading its own streams, and whole."""
    fours = []
    for i in range(CPU_REPEATS):
        fours.append(run(experiment(t, urls, 16, 64), t / f"four{i}", urls=urls, report=i == 0))
        print(f"64 on 4 endpoints x16 (64 concurrent), {i + 1}/{CPU_REPEATS}:", fours[-1],
              flush=True)  # fmt: skip
    # The figure is the median study's: one study's CPU per turn varies by 10-20% from run
    # to run on a shared VM (the servers share its two cores).
    report_cpu = fours[0].pop("report_cpu_s")
    four = sorted(fours, key=lambda r: r["cpu_ms_per_turn"])[CPU_REPEATS // 2]
    four = {**four, "report_cpu_s": report_cpu,
            "cpu_ms_per_turn_each": [r["cpu_ms_per_turn"] for r in fours]}  # fmt: skip
    own = run(experiment(t, urls, 16, 64), t / "own", urls=urls, gather=0.0)
    print("64 on 4 endpoints x16, no pump:", own, flush=True)
    whole = run(experiment(t, urls, 16, 64, stream=False), t / "whole", urls=urls)
    print("64 on 4 endpoints x16, stream: false:", whole, flush=True)

    def per_token(streamed: dict[str, Any]) -> float:
        """What streaming adds, per streamed chunk (one per token at 30 tokens/s)."""
        extra = streamed["cpu_s"] - whole["cpu_s"]
        return round(1e6 * extra / max(streamed["completion_tokens"], 1), 1)

    return {
        "four": four,
        "four_no_pump": own,
        "four_no_stream": whole,
        "cpu_ms_per_turn_at_64": four["cpu_ms_per_turn"],
        "cpu_ms_per_turn_at_64_no_pump": own["cpu_ms_per_turn"],
        "cpu_ms_per_turn_at_64_no_stream": whole["cpu_ms_per_turn"],
        "cpu_us_per_streamed_token": per_token(four),
        "cpu_us_per_streamed_token_no_pump": per_token(own),
    }


def main() -> None:
    startup_cpu = time.process_time()  # the interpreter and the imports above
    signal.signal(signal.SIGTERM, _terminate)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "bench" / "study.json")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--cpu-only", action="store_true")
    p.add_argument("--memory-child", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "server": "dummy_server " + " ".join(PACING) + ", max_tokens 60, 8 turns + summary",
        "startup_cpu_s": round(startup_cpu, 2),
    }
    procs, urls = start_servers(4)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            if args.cpu_only:
                run(experiment(t, urls[:1], 16, 16), t / "warm")  # lazy imports, first compiles
                print(json.dumps(cpu_studies(t, urls), indent=2))
                return
            c16 = run(experiment(t, urls[:1], 16, 32), t / "c16")
            print("32 at concurrency 16:", c16, flush=True)
            sequential = 8 if args.quick else 32
            c1 = run(experiment(t, urls[:1], 1, sequential), t / "c1")
            scale = 32 / sequential
            c1["wall_s_for_32"] = round(c1["wall_s"] * scale, 2)
            print(f"{sequential} at concurrency 1:", c1, flush=True)
            results["concurrency"] = {
                "c16": c16,
                "c1": c1,
                "c1_measured_runs": sequential,
                "speedup": round(c1["wall_s_for_32"] / c16["wall_s"], 2),
            }
            one = run(experiment(t, urls[:1], 16, 64), t / "one")
            print("64 on 1 endpoint x16:", one, flush=True)
            cpu = cpu_studies(t, urls)
            four, own = cpu.pop("four"), cpu.pop("four_no_pump")
            whole = cpu.pop("four_no_stream")
            results["endpoints"] = {
                "one": one,
                "four": four,
                "throughput_ratio": round(four["turns_per_s"] / one["turns_per_s"], 2),
                "four_no_pump": own,
                "four_no_stream": whole,
            }
            results.update(cpu)
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", urls[0]],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        results["memory_1000_queued"] = json.loads(child.stdout.strip().splitlines()[-1])
        print("1,000 queued:", results["memory_1000_queued"], flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
