"""`roundtable export`: a run as Markdown, one HTML file, or chat fine-tuning examples.

The chat examples are rebuilt by a pure replay of the recorded run (the machinery
`--resume` uses): the moderator decides again, the shared transcript is rebuilt from the
recorded texts, counts and folds, and each model turn's request is composed exactly as
the run composed it. No model or tokenizer is called.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from .client import ChatClient
from .display import Display
from .errors import InputError
from .markdown import to_markdown
from .moderator import TurnPlan
from .run import Discussion
from .table import load_run, run_directory
from .transcript import read_records

FORMATS = ("html", "md", "chat-jsonl")
# Where each format goes by default: next to transcript.jsonl in the run directory.
FILE_NAMES = {"html": "transcript.html", "md": "transcript.md", "chat-jsonl": "chat.jsonl"}
# Re-asks that say nothing about the reply (the transport failed, the context was full):
# --drop-guarded keeps their turns.
TRANSPORT_GUARDS = frozenset({"stream_dropped", "context_full"})


class _NoEndpoint:
    """Stands in for every endpoint during a replay: nothing is sent, nothing is counted
    (older transcripts without recorded counts get estimates, which no request depends on)."""

    model = None

    def count_tokens(self, text: str) -> int | None:
        return None


def _starts_a_run(path: Path) -> bool:
    # Line 1 only: a file that is no transcript may be large, binary or not JSON at all.
    try:
        with path.open("rb") as f:
            first = json.loads(f.readline(1 << 20).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(first, dict) and first.get("type") == "run"


def export_directory(path: Path) -> Path:
    """The run directory named by RUN (the directory, or its transcript.jsonl); a file that
    is no transcript is named as such."""
    if path.is_file() and path.name != "transcript.jsonl":
        if not _starts_a_run(path):
            raise InputError(
                f"{path}: not a roundtable transcript (line 1 is not a run record); pass the "
                "run directory a run printed"
            )
        raise InputError(
            f"{path}: a transcript under another name; export reads RUN_DIR/transcript.jsonl, "
            "so pass the run directory that holds it"
        )
    return run_directory(path)


def _records(run_dir: Path) -> tuple[Path, list[dict[str, Any]]]:
    run_dir = export_directory(run_dir)
    records = read_records(run_dir / "transcript.jsonl")
    if not records or records[0].get("type") != "run":
        raise InputError(
            f"{run_dir / 'transcript.jsonl'}: no run record on line 1; pass the directory of "
            "a roundtable run"
        )
    return run_dir, records


def guarded(turn: Mapping[str, Any]) -> bool:
    """True when a turn's reply was re-asked, cut or salvaged for what it said."""
    return any(g not in TRANSPORT_GUARDS for g in turn.get("guards") or ())


def chat_examples(
    run_dir: Path, *, completed_only: bool = False, drop_guarded: bool = False
) -> list[dict[str, Any]]:
    """One fine-tuning example per model turn: the messages sent for it and the reply.

    Human turns are left out (they were not model requests); `completed_only` keeps the
    turns the model ended itself (finish_reason stop); `drop_guarded` leaves out those
    `guarded()` says were judged."""
    run_dir, records = _records(run_dir)
    table, loaded = load_run(run_dir, {}, credentials=False)
    stand_in = cast(ChatClient, _NoEndpoint())
    quiet = Display(io.StringIO(), io.StringIO(), quiet=True)
    discussion = Discussion(
        table, {p.name: stand_in for p in table.personas}, quiet, run_dir, offline=True
    )
    run_id = run_dir.resolve().name
    layout = table.settings.layout
    examples: list[dict[str, Any]] = []

    def take(plan: TurnPlan, rec: dict[str, Any]) -> None:
        if rec.get("human"):
            return
        if completed_only and rec.get("finish_reason") != "stop":
            return
        if drop_guarded and guarded(rec):
            return
        request = discussion.request(plan)  # messages are the same for every attempt
        reply = {"role": "assistant", "content": rec.get("text", "")}
        examples.append({"messages": [*request.messages, reply], "metadata": {
            "run_id": run_id, "persona": plan.speaker, "turn": plan.index,
            "phase": plan.phase.value, "topic": plan.topic, "layout": layout,
            "model": rec.get("model"), "temperature": rec.get("temperature"),
            "seed": rec.get("seed"), "finish_reason": rec.get("finish_reason"),
            "attempts": rec.get("attempts", 1), "guards": list(rec.get("guards") or ()),
            "prompt_tokens": rec.get("prompt_tokens"),
            "completion_tokens": rec.get("completion_tokens"),
        }})  # fmt: skip

    discussion.replay_records(loaded["records"], take)
    return examples


def to_chat_jsonl(
    run_dir: Path, *, completed_only: bool = False, drop_guarded: bool = False
) -> str:
    """The chat examples as JSON lines, one example a line."""
    examples = chat_examples(run_dir, completed_only=completed_only, drop_guarded=drop_guarded)
    # ASCII JSON: model text reaches the terminal with -o -, and a raw C1 control or bidi
    # override in it would act there; as \u escapes it is inert and decodes the same.
    return "".join(json.dumps(e) + "\n" for e in examples)


def render(
    run_dir: Path, fmt: str, *, completed_only: bool = False, drop_guarded: bool = False
) -> str:
    """A run exported in `fmt` (html, md or chat-jsonl)."""
    if fmt not in FORMATS:
        raise InputError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if (completed_only or drop_guarded) and fmt != "chat-jsonl":
        raise InputError("--completed-only and --drop-guarded apply to --format chat-jsonl only")
    if fmt == "chat-jsonl":
        return to_chat_jsonl(run_dir, completed_only=completed_only, drop_guarded=drop_guarded)
    if fmt == "md":
        return to_markdown(_records(run_dir)[1])
    from .view.render import standalone_html  # the viewer's page, as one file

    return standalone_html(export_directory(run_dir))  # it reads the transcript itself


def add_parser(sub: Any) -> None:
    """Add the `export` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "export",
        help="write a run as one HTML file, Markdown, or chat fine-tuning JSONL",
        description="Export a run. Default output: RUN_DIR/transcript.html, "
        "RUN_DIR/transcript.md or RUN_DIR/chat.jsonl; -o FILE elsewhere, -o - to stdout. "
        'See README, "Exports".',
    )
    p.add_argument("run", type=Path, metavar="RUN_DIR", help="a run directory")
    p.add_argument("--format", "-f", default="html", metavar="|".join(FORMATS),
                   help="what to write (default: html)")  # fmt: skip
    p.add_argument("-o", "--output", metavar="FILE", help="where to write it (- for stdout)")
    p.add_argument("--completed-only", action="store_true",
                   help="chat-jsonl: only turns the model finished itself (finish_reason "
                   "stop)")  # fmt: skip
    p.add_argument("--drop-guarded", action="store_true",
                   help="chat-jsonl: leave out turns re-asked, cut or salvaged for what "
                   "they said")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Run `roundtable export`; mistakes are InputError (one line, exit 2)."""
    text = render(args.run, args.format, completed_only=args.completed_only,
                  drop_guarded=args.drop_guarded)  # fmt: skip
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    run_dir = export_directory(args.run)
    target = Path(args.output) if args.output else run_dir / FILE_NAMES[args.format]
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{target}: cannot write the export ({exc.strerror or exc}); "
                         "choose another -o FILE") from None  # fmt: skip
    print(f"roundtable: wrote {target}", file=sys.stderr)
    return 0
