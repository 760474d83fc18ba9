"""Starting a run from the command line: the run directory's lock, the offline dummy
server, signals, and how an interrupted or failed run is reported."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import human
from .config import offline_notice
from .display import Display
from .errors import InputError, ServerError
from .run import Discussion
from .selector import Selector
from .table import (
    Clients,
    Table,
    build_clients,
    default_out_dir,
    load_run,
    load_table,
    own_endpoints,
    run_directory,
)
from .transcript import RunLock


@dataclass(frozen=True)
class RunOptions:
    """What `roundtable run` was asked to do (parsed flags)."""

    table: Path = Path(".")
    config: Path | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)
    out: Path | None = None
    resume: Path | None = None
    offline: bool = False
    color: bool | None = None
    quiet: bool = False
    verbose: bool = False
    human: str | None = None  # --human NAME: a seat for this run only
    human_full_name: str | None = None
    human_input: Path | None = None  # the human turns from a file instead of the terminal
    human_timeout: float | None = None


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM stops a run the way Ctrl-C does: finished turns kept, end line written.
    raise KeyboardInterrupt


def silence_stdout() -> None:
    """Send the rest of stdout to /dev/null once its reader has gone (`| head`)."""
    # The reader went away (`| head`): send the rest, and the interpreter's final
    # flush, to /dev/null instead of failing again on exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests): nothing will be flushed to a closed pipe


def execute(options: RunOptions) -> int:
    """Run (or resume) a discussion as the command line asked; return the exit code."""
    flags = dict(options.flags)
    resume = None
    if options.resume is not None:
        if options.out is not None:
            raise InputError("--out: a resumed run continues in its own directory; drop --out")
        out_dir = run_directory(options.resume)
    else:
        table = load_table(options.table, options.config, flags=flags)
        table = human.seat(table, options.human, options.human_full_name)
        out_dir = options.out or default_out_dir(table.directory)
    lock = RunLock(out_dir)
    try:
        if options.resume is not None:
            table, resume = load_run(out_dir, flags)
            if resume["status"] == "completed":
                print(f"roundtable: {out_dir} is already complete ({len(resume['turns'])} "
                      "turns); nothing to resume")  # fmt: skip
                return 0
            recorded_offline = bool(resume["run"].get("offline")) and "base_url" not in flags
        else:
            recorded_offline = False
        # Everyone on the dummy model: --offline, or a resumed run that was offline.
        everyone = options.offline or recorded_offline
        source = human.open_source(table, options.human_input)  # no terminal: an Error now
        seat = human.Seat(source, timeout=options.human_timeout) if source else None
        display = Display(color=options.color, quiet=options.quiet, verbose=options.verbose)
        forced = options.offline or (recorded_offline and bool(table.settings.base_url))
        return _execute(table, resume, out_dir, everyone, display, forced, seat)
    finally:
        lock.release()


def _execute(
    table: Table,
    resume: dict[str, Any] | None,
    out_dir: Path,
    everyone: bool,
    display: Display,
    forced: bool,
    seat: human.Seat | None = None,
) -> int:
    # The table's endpoint is the dummy model with --offline or when none is configured;
    # personas with their own base_url keep it unless everyone is sent offline.
    offline = everyone or not table.settings.base_url
    own = [] if everyone else own_endpoints(table)
    again = f"python -m roundtable --resume {shlex.quote(str(out_dir))}"
    server = None
    clients: Clients | None = None
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for warning in table.prompts.warnings:
            display.notice(f"roundtable: warning: {warning}")
        if offline:
            from dummy_server import BackgroundServer

            server = BackgroundServer()
            url = server.base_url
            display.notice(offline_notice(table.settings, forced, url, own))
        else:
            assert table.settings.base_url is not None
            url = table.settings.base_url
        clients = build_clients(
            table,
            url,
            offline=offline,
            everyone=everyone,
            notice=display.notice,
            debug=display.debug,
        )
        selector = Selector(clients.selector) if clients.selector else None
        # A run is recorded offline only when no turn went to a real server.
        all_dummy = offline and not own
        discussion = Discussion(table, clients.personas, display, out_dir, offline=all_dummy,
                                summary_client=clients.table, selector=selector,
                                seat=seat)  # fmt: skip
        if resume is not None:
            display.notice(
                f"roundtable: resuming {out_dir} after turn {len(resume['turns'])} "
                f"(of {table.settings.turns} + summary)"
            )
        result = discussion.run(resume)
    except BrokenPipeError:
        silence_stdout()  # recorded as interrupted: `--resume` carries on
        return 0
    except KeyboardInterrupt:
        saved = (out_dir / "transcript.jsonl").exists()
        display.abort_turn()
        display.result(
            "roundtable: interrupted; the finished turns are saved. Resume with: " + again
            if saved
            else "roundtable: interrupted"
        )
        return 130
    except ServerError as exc:
        if (out_dir / "transcript.jsonl").exists() and exc.resumable:
            raise ServerError(f"{exc}; resume with: {again}") from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if clients is not None:
            clients.close()
        if server is not None:
            server.close()
    display.result(result.line())
    return 0
