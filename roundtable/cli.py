"""Command line: `python -m roundtable [run|check] ...`; `main(argv) -> int`."""

from __future__ import annotations

import argparse
import difflib
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, draft_command, export, graph, metrics, scaffold
from .config import DECLARATIONS, Declaration, redact_url
from .errors import InputError, RoundtableError
from .session import RunOptions, execute, silence_stdout
from .study import command as study
from .table import Table, load_table
from .view import command as view_command

_DESCRIPTION = """\
Simulate a roundtable discussion between LLM personas.

A table is a directory with participants/ (one persona file each), task/ (context,
instructions, questions), prompts/ (Jinja templates) and an optional roundtable.yaml.
With no server configured, roundtable runs offline on its built-in Markov dummy model.
"""

_EPILOG = """\
examples:
  python -m roundtable init mytable --topic "Should our town go car-free?"  # a new table
  python -m roundtable --table mytable                 # run it, offline dummy model
  python -m roundtable personas draft --table mytable --count 6 --brief "parents of
      pupils at one school" --vary stance=for,against,undecided   # more personas, drafted
  python -m roundtable --turns 20 --seed 7             # longer, reproducible
  python -m roundtable --base-url http://localhost:8000/v1 --model my-model
  python -m roundtable check                           # validate the table, no model calls
  python -m roundtable --human Zoe                     # take a seat at the table yourself
  python -m roundtable metrics outputs/*               # measure finished runs
  python -m roundtable study examples/layouts.yaml     # many runs, compared
  python -m roundtable export outputs/RUN --format md  # a run as Markdown (or html, chat-jsonl)
  python -m roundtable graph --format svg              # the moderator's state machine
  python -m roundtable view                            # watch outputs/ in a browser

settings precedence: flag > environment (ROUNDTABLE_<NAME>, OPENAI_BASE_URL) > roundtable.yaml
> default. The API key is read from the variable named by api_key_env (OPENAI_API_KEY);
without one a placeholder is sent, which local servers accept.

commands: run (the default; `run` may be left out), check, init, personas (draft),
metrics, study, report, export, graph, view (see `roundtable <command> --help`).

exit codes: 0 done; 1 a server or run failure (the transcript is kept: --resume goes on);
2 a mistake in a file, a flag or the command line; 130 interrupted (Ctrl-C).
"""

COMMANDS = (
    "run", "check", "init", "personas", "metrics", "study", "report", "export", "graph", "view"
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clean line instead of argparse's usage dump, with a guess for a typo.
        raise InputError(f"{message}{self._guess(message)}; see --help")

    def _guess(self, message: str) -> str:
        if not message.startswith("unrecognized arguments: "):
            return ""
        # Unknown words are reported by the top parser: look in the commands' options too.
        parsers = [self, *(
            sub for a in self._actions if isinstance(a, argparse._SubParsersAction)
            for sub in a.choices.values()
        )]  # fmt: skip
        known = sorted({
            o for p in parsers for a in p._actions for o in a.option_strings if o.startswith("--")
        })  # fmt: skip
        for word in message.split(": ", 1)[1].split():
            close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.75)
            if word.startswith("--") and close:
                return f' (did you mean "{close[0]}"?)'
        return ""


def _help(d: Declaration) -> str:
    # argparse formats help with %: a literal one must be doubled.
    return f"{d.help} (default: {d.show(d.default)})".replace("%", "%%")


def _add_table_args(
    p: argparse.ArgumentParser,
    table_help: str = "the table directory (default: the current directory)",
) -> None:
    p.add_argument("--table", type=Path, metavar="DIR", help=table_help)
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: DIR/roundtable.yaml or .yml if present)",
    )
    s = p.add_argument_group("settings (override roundtable.yaml and the environment)")
    for d in DECLARATIONS.values():
        if d.kind is bool:
            # --x and --no-x, so a flag can undo roundtable.yaml either way.
            s.add_argument(
                f"--{d.name.replace('_', '-')}",
                dest=d.name,
                action=argparse.BooleanOptionalAction,
                help=_help(d),
            )
        elif d.flag is not None:
            s.add_argument(d.flag, dest=d.name, metavar=d.metavar, help=_help(d))


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
        help="carry on an interrupted run from its directory or its transcript.jsonl (only "
        "endpoint flags may be given with it)",
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
    seat = run.add_argument_group("taking a seat (a person at the terminal joins the table)")
    seat.add_argument("--human", metavar="NAME", help="take a seat at the table as NAME")
    seat.add_argument(
        "--human-full-name",
        metavar="TEXT",
        help="your full name in the participant list (default: NAME)",
    )
    seat.add_argument(
        "--human-input",
        type=Path,
        metavar="FILE",
        help="read the human turns from FILE, one per paragraph (blank lines "
        "between; a paragraph may be /pass, /ask NAME or /quit)",
    )
    seat.add_argument(
        "--human-timeout",
        metavar="S",
        help="pass a human turn when nothing is typed within S seconds",
    )
    check = sub.add_parser(
        "check",
        help="validate a table and summarise it, without model calls",
        description="Load and validate a table (personas, task, prompts, settings) as a run "
        "would, render every template once, and summarise it: participants, questions, "
        "turns and endpoints. No model is called. Exit 2 with an Error: line on a mistake.",
    )
    _add_table_args(check)
    scaffold.add_parser(sub)
    draft_command.add_parsers(sub)
    metrics.add_metrics_parser(sub)
    study.add_parsers(sub)
    export.add_parser(sub)
    graph.add_parser(sub, _add_table_args)
    view_command.add_parser(sub)
    return parser  # fmt: skip


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {n: v for n in DECLARATIONS if (v := getattr(args, n, None)) is not None}


def display_width(text: str) -> int:
    """Terminal columns taken by text: wide (e.g. CJK) characters take two, combining none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _check(table: Table) -> int:
    s = table.settings
    print(f"Table {table.directory.resolve()}: OK")
    for warning in table.prompts.warnings:
        print(f"  warning: {warning}")
    print(f"  settings from: {table.config_file or 'defaults'} (+ environment and flags)")
    print(f"  participants ({len(table.personas)}):")
    width = max([12, *(display_width(p.name) for p in table.personas)])
    for p in table.personas:
        if p.human:
            print(f"    {_pad(p.name, width)} {p.full_name}  (human: types at the terminal)")
            continue
        print(f"    {_pad(p.name, width)} {p.full_name}  (creativity {p.creativity}, "
              f"temperature {s.temperature(p.creativity)})")  # fmt: skip
        if p.base_url or p.model:
            where = redact_url(p.base_url) or "the table's endpoint"
            print(
                f"    {_pad('', width)} own endpoint: {where}, model {p.model or '(first listed)'}"
            )
    print(f"  questions ({len(table.task.questions)}):")
    for q in table.task.questions:
        print(f"    - {q}")
    seed = DECLARATIONS["seed"].show(s.seed)
    print(f"  turns: {s.turns} (wrap-up {s.wrap_up_turns}) + summary; ~{s.turns_per_topic} per "
          f"question; max_tokens: {s.max_tokens}; seed: {seed}")  # fmt: skip
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
            human=args.human,
            human_full_name=args.human_full_name,
            human_input=args.human_input,
            human_timeout=_seconds(args.human_timeout, "--human-timeout"),
        )
    )


def _seconds(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InputError(f"{flag}: must be a number of seconds > 0, got {text!r}")
    return value


def _unknown_command(word: str) -> InputError:
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if close:
        return InputError(f'{word}: unknown command; did you mean "{close[0]}"?')
    hint = f"; for a table directory, pass --table {word}" if Path(word).is_dir() else ""
    if word == "help":
        hint = "; for help, use --help (or <command> --help)"
    others = ", ".join(COMMANDS[1:-1])
    return InputError(
        f"{word}: unknown command; the commands are run (the default), {others} and "
        f"{COMMANDS[-1]}{hint}"
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line into arguments, with run as the default command."""
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        raise _unknown_command(argv[0])
    # `run` is the default command, its help included: `roundtable --help` shows run's
    # options (the subcommand list is in its epilog).
    if not argv or argv[0] not in (*COMMANDS, "--version"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    resume = getattr(args, "resume", None)
    if resume is not None:
        for flag in ("table", "config"):
            if getattr(args, flag) is not None:
                raise InputError(
                    f"--{flag}: a resumed run uses the table and settings it recorded; "
                    f"drop --{flag}"
                )
        for flag in ("human", "human_full_name"):
            if getattr(args, flag) is not None:
                dashed = flag.replace("_", "-")
                raise InputError(
                    f"--{dashed}: a resumed run keeps the participants it recorded (a seat "
                    f"taken then is asked again); drop --{dashed}"
                )
        if resume.name == "transcript.jsonl" or resume.is_file():
            args.resume = resume.parent  # the run is the directory that holds the transcript
    if getattr(args, "table", "") is None and args.command != "graph":  # graph: settings if any
        args.table = Path(".")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        if args.command == "check":
            return _check(load_table(args.table, args.config, flags=_flags(args)))
        if args.command == "init":
            return scaffold.main(args)
        if args.command == "personas":
            return draft_command.main(args)
        if args.command == "metrics":
            return metrics.main(args)
        if args.command == "view":
            return view_command.main(args)
        if args.command in ("study", "report"):
            return study.main_study(args) if args.command == "study" else study.main_report(args)
        if args.command == "export":
            return export.main(args)
        if args.command == "graph":
            return graph.main(args, _flags(args))
        return _run(args)
    except RoundtableError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roundtable: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        silence_stdout()  # `roundtable check | head -1`: the reader has what it wanted
        return 0


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
