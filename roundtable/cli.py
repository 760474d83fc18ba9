"""Command line: `python -m roundtable [run|check] ...`; `main(argv) -> int`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import redact_url
from .errors import InputError, RoundtableError
from .run import RunOptions, execute
from .table import Table, load_table

_DESCRIPTION = """\
Simulate a roundtable discussion between LLM personas.

A table is a directory with participants/ (one persona file each), task/ (context,
instructions, questions), prompts/ (Jinja templates) and an optional roundtable.yaml.
With no server configured, roundtable runs offline on its built-in Markov dummy model.
"""

_EPILOG = """\
examples:
  python -m roundtable                                 # this directory, offline dummy model
  python -m roundtable --turns 20 --seed 7             # longer, reproducible
  python -m roundtable --base-url http://localhost:8000/v1 --model my-model
  python -m roundtable check                           # validate the table, no model calls

settings precedence: flag > environment (ROUNDTABLE_<NAME>, OPENAI_BASE_URL) > roundtable.yaml
> default. The API key is read from the variable named by api_key_env (OPENAI_API_KEY);
without one a placeholder is sent, which local servers accept.

commands: run (the default; `run` may be left out), check (see `roundtable check --help`).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clean line instead of argparse's usage dump.
        raise InputError(f"{message}; see --help")


def _add_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--table",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the table directory (default: the current directory)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: DIR/roundtable.yaml if present)",
    )
    s = p.add_argument_group("settings (override roundtable.yaml and the environment)")
    s.add_argument("--turns", metavar="N", help="discussion turns before the summary (default 12)")
    s.add_argument(
        "--wrap-up-turns", metavar="N", help="how many of those are closing remarks (default 2)"
    )
    s.add_argument("--turns-per-topic", metavar="N", help="average turns per question (default 4)")
    s.add_argument(
        "--ask-opinion-every",
        metavar="N",
        help="nudge a speaker to ask someone's opinion about every N turns; 0 never (default 4)",
    )
    s.add_argument(
        "--no-introductions",
        dest="introductions",
        action="store_const",
        const="false",
        help="skip the introductions",
    )
    s.add_argument("--max-tokens", metavar="N", help="cap on each reply's length (default 200)")
    s.add_argument(
        "--seed", metavar="N", help="seed for a reproducible run (default: random, recorded)"
    )
    s.add_argument(
        "--temperature-scale", metavar="X", help="temperature = creativity x this (default 1.0)"
    )
    s.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1",
    )
    s.add_argument("--model", help="model name (default: the first one the server lists)")
    s.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    s.add_argument("--timeout", metavar="SECONDS", help="per-request timeout (default 120)")
    s.add_argument(
        "--no-stream",
        dest="stream",
        action="store_const",
        const="false",
        help="wait for whole replies instead of streaming",
    )
    s.add_argument(
        "--context-window",
        metavar="N",
        help="the model's context size in tokens (default: ask the server)",
    )
    s.add_argument(
        "--compat",
        metavar="MODE",
        help="message layout: auto (default), standard, no-system, alternating",
    )
    s.add_argument("--retries", metavar="N", help="retries of a failed request (default 4)")
    s.add_argument(
        "--retry-wait", metavar="SECONDS", help="first retry delay, doubling (default 0.5)"
    )
    s.add_argument(
        "--fold-summary", metavar="HOW", help="recap of folded turns: extractive (default) or model"
    )
    s.add_argument("--top-p", metavar="P", help="nucleus sampling for every persona")
    s.add_argument("--frequency-penalty", metavar="X", help="-2 to 2, for every persona")
    s.add_argument("--presence-penalty", metavar="X", help="-2 to 2, every persona")  # fmt: skip


_SETTING_FLAGS = (
    "turns", "wrap_up_turns", "turns_per_topic", "ask_opinion_every", "introductions",
    "max_tokens", "seed", "temperature_scale", "base_url", "model", "api_key_env", "timeout",
    "stream", "context_window", "compat", "retries", "retry_wait", "fold_summary", "top_p",
    "frequency_penalty", "presence_penalty",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands run and check)."""
    parser = _Parser(
        prog="roundtable",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"roundtable {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{run,check}", parser_class=_Parser)
    run = sub.add_parser(
        "run",
        prog="roundtable [run]",
        help="run a discussion (the default)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_table_args(run)
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write the transcript (default: DIR/outputs/<timestamp>/)",
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="carry on an interrupted run from its transcript (only endpoint flags may be "
        "given with it)",
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="use the built-in dummy model even if a server is configured",
    )
    run.add_argument(
        "--no-color",
        dest="color",
        action="store_const",
        const=False,
        help="no colours (also: NO_COLOR=1, or output not a terminal)",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="show no discussion, only the result"
    )
    run.add_argument("--verbose", "-v", action="store_true", help="show every request's prompt")
    check = sub.add_parser("check", help="validate a table and summarise it, without model calls")
    _add_table_args(check)
    return parser  # fmt: skip


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _SETTING_FLAGS if getattr(args, k, None) is not None}


def _check(table: Table) -> int:
    s = table.settings
    print(f"Table {table.directory.resolve()}: OK")
    print(f"  settings from: {table.config_file or 'defaults'} (+ environment and flags)")
    print(f"  participants ({len(table.personas)}):")
    for p in table.personas:
        print(f"    {p.name:<12} {p.full_name}  (creativity {p.creativity}, "
              f"temperature {s.temperature(p.creativity)})")  # fmt: skip
        if p.base_url or p.model:
            where = redact_url(p.base_url) or "the table's endpoint"
            print(f"    {'':<12} own endpoint: {where}, model {p.model or '(first listed)'}")
    print(f"  questions ({len(table.task.questions)}):")
    for q in table.task.questions:
        print(f"    - {q}")
    print(f"  turns {s.turns} (wrap-up {s.wrap_up_turns}) + summary; ~{s.turns_per_topic} per "
          f"question; max_tokens {s.max_tokens}; seed {s.seed}")  # fmt: skip
    where = redact_url(s.base_url) or "offline dummy model (no base_url set)"
    print(f"  endpoint: {where}; model {s.model or '(first listed)'}")
    return 0


def _run(args: argparse.Namespace) -> int:
    return execute(
        RunOptions(
            table=args.table,
            config=args.config,
            flags=_flags(args),
            out=args.out,
            resume=args.resume,
            offline=args.offline,
            color=args.color,
            quiet=args.quiet,
            verbose=args.verbose,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `run` is the default command, its help included: `roundtable --help` shows run's
    # options (the subcommand list is in its epilog).
    if not argv or argv[0] not in ("run", "check", "--version"):
        argv.insert(0, "run")
    try:
        args = build_parser().parse_args(argv)
        if args.command == "check":
            return _check(load_table(args.table, args.config, flags=_flags(args)))
        return _run(args)
    except RoundtableError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roundtable: interrupted", file=sys.stderr)
        return 130


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
