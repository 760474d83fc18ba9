"""Throughput and latency of the dummy server under 1, 8 and 32 concurrent streaming clients.

Usage: python bench/dummy_server.py [--requests-per-client 20] [--max-tokens 64] [--out FILE]

Starts the server in-process on a free loopback port, drives it with the real
openai client (streaming), prints a table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# This file is named like the package it measures; drop its own folder from the
# import path so that `import dummy_server` finds the package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import openai

from dummy_server import BackgroundServer

MESSAGES = [
    {"role": "system", "content": "You are Ada, a careful engineer at a roundtable."},
    {
        "role": "user",
        "content": "Bob: I think we should rewrite everything. What do you think, Ada?",
    },
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run(concurrency: int, per_client: int, max_tokens: int, base_url: str) -> dict[str, float]:
    """Run `concurrency` clients, each streaming `per_client` replies; return the figures."""

    def client_loop(i: int) -> list[float]:
        client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        latencies = []
        for j in range(per_client):
            start = time.perf_counter()
            stream = client.chat.completions.create(
                model="markov-dummy",
                messages=MESSAGES,
                max_tokens=max_tokens,
                seed=i * 1000 + j,
                stream=True,
            )
            for _ in stream:
                pass
            latencies.append(time.perf_counter() - start)
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [x for result in pool.map(client_loop, range(concurrency)) for x in result]
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
    }


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("dummy_server.json"))
    args = parser.parse_args()
    rows = []
    with BackgroundServer() as server:
        run(1, 3, args.max_tokens, server.base_url)  # warm up
        for concurrency in (1, 8, 32):
            rows.append(
                run(concurrency, args.requests_per_client, args.max_tokens, server.base_url)
            )
    machine = platform.processor() or platform.machine()
    print(f"dummy server, streaming, max_tokens={args.max_tokens}, {machine}")
    print(f"{'clients':>8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['concurrency']:>8} {r['requests']:>9} {r['requests_per_s']:>8.1f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    args.out.write_text(
        json.dumps({"max_tokens": args.max_tokens, "results": rows}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
