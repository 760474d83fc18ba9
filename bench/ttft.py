"""Time from a turn's first token arriving from the server to it reaching the terminal.

Usage: python bench/ttft.py [--turns 40] [--out FILE]

Runs a seeded discussion against the dummy server (in-process, paced at 30 tokens/s
after a 100 ms wait, like a small local model) with streaming output. Every delta is
timestamped as the client hands it over (just parsed off the wire), and every write to
the terminal as it is flushed. Per turn: the time from the first delta to the first
words on screen. A reply's first words are held back only while they could still be a
name tag ("Ben:" is dropped, "Ben, I think" is shown); those turns are counted apart,
and for every turn the processing time of the delta that put the first words on screen
is given too.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/dummy_server.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import roundtable.attempts as run_module  # where each reply's deltas are shown
from dummy_server import BackgroundServer
from roundtable.cli import main as roundtable
from roundtable.display import Display

REPO = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    """Stands in for the terminal: remembers when each write was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((time.perf_counter(), text))
        return len(text)

    def isatty(self) -> bool:
        return False


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("ttft.json"))
    args = parser.parse_args()

    turns: list[dict[str, float]] = []  # one record per request (attempts included)
    original_shower, original_text = run_module._shower, Display.text

    def shower(display: Display, reply, **kw):  # type: ignore[no-untyped-def]
        inner = original_shower(display, reply, **kw)
        turns.append({"deltas": 0})

        def show(delta: str) -> bool:
            now = time.perf_counter()
            record = turns[-1]
            record.setdefault("first_arrival", now)
            record["last_arrival"] = now
            record["deltas"] += 1
            return inner(delta)

        return show

    def text(self: Display, delta: str) -> None:
        writes = self.out.writes  # type: ignore[attr-defined]
        before = len(writes)
        original_text(self, delta)
        record = turns[-1] if turns else None
        if record is not None and "first_shown" not in record and len(writes) > before:
            record["first_shown"] = writes[-1][0]
            record["trigger"] = record["last_arrival"]  # the delta that showed them
            record["held"] = float(record["deltas"] > 1)

    run_module._shower = shower  # type: ignore[assignment]
    Display.text = text  # type: ignore[method-assign]
    terminal = Terminal()
    stdout, sys.stdout = sys.stdout, terminal
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            BackgroundServer({"tokens_per_second": 30, "latency_ms": 100}) as server,
        ):
            argv = ["--table", str(REPO), "--base-url", server.base_url, "--seed", "2",
                    "--turns", str(args.turns), "--out", str(Path(tmp) / "run")]  # fmt: skip
            code = roundtable(argv)
    finally:
        sys.stdout = stdout
        run_module._shower = original_shower  # type: ignore[assignment]
        Display.text = original_text  # type: ignore[method-assign]
    if code != 0:
        raise SystemExit(f"run failed (exit {code})")
    shown = [t for t in turns if "first_shown" in t]
    to_screen = [(t["first_shown"] - t["first_arrival"]) * 1000 for t in shown]
    processing = [(t["first_shown"] - t["trigger"]) * 1000 for t in shown]
    direct = [x for x, t in zip(to_screen, shown, strict=True) if not t["held"]]
    held = [x for x, t in zip(to_screen, shown, strict=True) if t["held"]]
    print(f"first token to terminal, dummy server at 30 tokens/s, {len(shown)} replies shown")
    print(f"  first words in the first delta ({len(direct)} replies): "
          f"median {statistics.median(direct):.3f} ms, max {max(direct):.3f} ms")  # fmt: skip
    if held:
        print(f"  first delta held as a possible name tag ({len(held)} replies): first words "
              f"on screen {statistics.median(held):.0f} ms (median) after it")  # fmt: skip
    median, most = statistics.median(processing), max(processing)
    print(f"  from the delta carrying the first shown words to the screen, all replies: "
          f"median {median:.3f} ms, max {most:.3f} ms")  # fmt: skip
    result = {"replies_shown": len(shown), "direct_ms": direct, "held_ms": held,
              "processing_ms": processing, "direct_max_ms": max(direct),
              "processing_max_ms": max(processing)}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
