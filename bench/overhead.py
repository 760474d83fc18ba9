"""Roundtable's own cost per turn, against a server that answers instantly.

Usage: python bench/overhead.py [--out FILE]

Starts a tiny OpenAI-compatible server in a separate process that sends the same short
streamed reply at once (no model, no waiting), then runs seeded discussions of 100 and
1,000 turns in this process (streaming, display to /dev/null, transcript written and
fsynced every turn as usual). "own work" is the CPU time of this process, so waiting
for the server costs nothing, while everything roundtable does (moderator, prompts,
counting, folding, the HTTP client, parsing the stream, display, transcript) counts.
Wall time is shown too (it includes the server's time and the disk's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from roundtable.cli import main as roundtable

REPO = Path(__file__).resolve().parents[1]

INSTANT_SERVER = r"""
import itertools, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("Shade on bus stops would help the people who wait longest in the sun. "
         "We could pay for it from the parking budget and measure the results next summer.").split()


def chunk(delta, finish=None):
    return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "instant",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def body(n):
    # Every reply is new (each word carries the request number), as a real model's are:
    # the echo guard passes it, so a turn is one request, as without guards.
    words = [f"{w}{n}" for w in WORDS]
    return "".join(
        f"data: {json.dumps(c)}\n\n"
        for c in [chunk({"role": "assistant", "content": ""})]
        + [chunk({"content": (" " if i else "") + w}) for i, w in enumerate(words)]
        + [chunk({}, "stop"),
           {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "instant",
            "choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": len(words),
                                     "total_tokens": 100 + len(words)}}]
    ) + "data: [DONE]\n\n"


REQUESTS = itertools.count()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms ACK stall)

    def log_message(self, *args):
        pass

    def reply(self, status, body, kind="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            models = {"object": "list", "data": [{"id": "instant", "object": "model"}]}
            self.reply(200, json.dumps(models))
        else:
            self.reply(404, json.dumps({"error": {"message": "not found"}}))

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/chat/completions":
            self.reply(200, body(next(REQUESTS)), "text/event-stream")
        else:
            self.reply(404, json.dumps({"error": {"message": "not found"}}))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def run(turns: int, url: str, workdir: Path) -> dict[str, float]:
    """One discussion; returns CPU and wall seconds."""
    out = workdir / f"run-{turns}"
    argv = ["--table", str(REPO), "--base-url", url, "--seed", "5", "--turns", str(turns),
            "--context-window", "4096", "--max-tokens", "100", "--no-color", "--out", str(out),
            "--no-introductions"]  # fmt: skip
    stdout = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            code = roundtable(argv)
        finally:
            sys.stdout = stdout
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if code != 0:
        raise SystemExit(f"run failed (exit {code})")
    n = sum(1 for line in (out / "transcript.jsonl").open() if '"type": "turn"' in line)
    return {"turns": n, "cpu_s": cpu, "wall_s": wall, "cpu_ms_per_turn": cpu / n * 1000,
            "wall_ms_per_turn": wall / n * 1000}  # fmt: skip


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("overhead.json"))
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", INSTANT_SERVER], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
        urllib.request.urlopen(url + "/models", timeout=5).close()
        with tempfile.TemporaryDirectory() as tmp:
            run(20, url, Path(tmp))  # warm up
            rows = [run(n, url, Path(tmp)) for n in (100, 1000)]
    finally:
        server.terminate()
    small, large = rows
    print(f"roundtable overhead against an instant server, {platform.machine()}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"{'turns':>6} {'CPU s':>7} {'wall s':>7} {'CPU ms/turn':>12} {'wall ms/turn':>13}")
    for r in rows:
        print(f"{r['turns']:>6} {r['cpu_s']:>7.2f} {r['wall_s']:>7.2f} "
              f"{r['cpu_ms_per_turn']:>12.2f} {r['wall_ms_per_turn']:>13.2f}")  # fmt: skip
    scale_cpu = large["cpu_s"] / small["cpu_s"]
    scale_wall = large["wall_s"] / small["wall_s"]
    print(f"1,000-turn run / 100-turn run: CPU {scale_cpu:.1f}x, wall {scale_wall:.1f}x")
    result = {"results": rows, "scale_cpu": scale_cpu, "scale_wall": scale_wall}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
