"""Prompt tokens per turn as a discussion grows: full history every turn vs roundtable's.

Usage: python bench/prompt_growth.py [--window 2048] [--out FILE]

Runs seeded discussions of 10, 20, 40 and 80 turns against the dummy server (in-process,
loopback) and reads each turn's prompt tokens (the dummy's own tokenizer, reported as
usage). "full history" resends the whole transcript every turn (the context window set
out of reach, so nothing is folded): what a naive script does, and what overflowed the
original on a 4,096-token model. "roundtable" runs with the window set, folding the
oldest turns into a recap in large steps.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from dummy_server import BackgroundServer
from roundtable.cli import main as roundtable

REPO = Path(__file__).resolve().parents[1]
MAX_TOKENS = 200


def prompts(turns: int, window: int, server_window: int, workdir: Path) -> list[int]:
    """Prompt tokens of every persona turn of one seeded run (the summary left out)."""
    out = workdir / f"run-{turns}-{window}"
    with BackgroundServer({"context_window": server_window}) as server:
        argv = ["--table", str(REPO), "--base-url", server.base_url, "--seed", "3",
                "--turns", str(turns), "--context-window", str(window),
                "--max-tokens", str(MAX_TOKENS), "--out", str(out), "--quiet"]  # fmt: skip
        code = roundtable(argv)
    if code != 0:
        raise SystemExit(f"run failed (exit {code})")
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    return [r["prompt_tokens"] for r in records if r["type"] == "turn" and r["phase"] != "summary"]


def mean(values: list[int]) -> float:
    return statistics.mean(values) if values else float("nan")


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("prompt_growth.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for turns in (10, 20, 40, 80):
            ours = prompts(turns, args.window, args.window, Path(tmp))
            naive = prompts(turns, 10**7, 10**7, Path(tmp))
            results.append({"turns": turns, "roundtable": ours, "full_history": naive})
    print(
        f"prompt tokens per turn (dummy tokenizer), window {args.window}, max_tokens {MAX_TOKENS}"
    )
    print(f"{'turns':>5} | {'full history: max':>17} {'mean':>7} {'total':>8} | "
          f"{'roundtable: max':>15} {'mean':>7} {'total':>8} {'fits':>5}")  # fmt: skip
    for r in results:
        naive, ours = r["full_history"], r["roundtable"]
        fits = max(ours) + MAX_TOKENS <= args.window
        left = f"{max(naive):>17} {mean(naive):>7.0f} {sum(naive):>8}"
        right = f"{max(ours):>15} {mean(ours):>7.0f} {sum(ours):>8} {'yes' if fits else 'NO':>5}"
        print(f"{r['turns']:>5} | {left} | {right}")
    longest = results[-1]["roundtable"]
    early, late = mean(longest[19:40]), mean(longest[59:80])
    folds = sum(1 for a, b in zip(longest, longest[1:], strict=False) if b < a - 100)
    ratio = late / early
    print(f"80 turns, roundtable: mean prompt over turns 20-40 {early:.0f}, over 60-80 "
          f"{late:.0f} (ratio {ratio:.2f}); folds (prompt fell >100 tokens): {folds}")  # fmt: skip
    summary = {"window": args.window, "max_tokens": MAX_TOKENS, "mean_20_40": early,
               "mean_60_80": late, "ratio": late / early, "folds_80": folds}  # fmt: skip
    args.out.write_text(json.dumps({**summary, "results": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
