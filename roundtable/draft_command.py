"""The `personas` command group: `roundtable personas draft` (drafting is in draft.py)."""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from .client import ChatClient
from .config import DECLARATIONS, Settings, api_key, load_settings, offline_notice
from .draft import (
    FIELDS,
    Drafter,
    assignments,
    check_varies,
    describe_attrs,
    parse_vary,
    report_error,
    shortfall,
    slug,
    write_new,
)
from .errors import InputError
from .personas import Persona, load_personas, persona_files
from .sanitize import sanitize
from .scaffold import PERSONA_HEADER, comment, persona_yaml
from .table import check_directory

# The settings of a run that say how to reach the model (and the seed).
ENDPOINT = ("base_url", "model", "api_key_env", "timeout", "compat", "retries", "retry_wait")
MAX_COUNT = 100


def add_parsers(sub: Any) -> None:
    """Add `personas` (with `draft`) to the CLI's subparsers."""
    group = sub.add_parser("personas", help="work with persona files: draft them with a model")
    verbs = group.add_subparsers(dest="personas_command", metavar="{draft}", required=True)
    p = verbs.add_parser(
        "draft",
        help="ask the model to draft persona files from a brief",
        description="Ask the configured model to draft persona files into DIR/participants/ "
        "from a brief, with controlled variation: with --vary stance=for,against the drafts "
        "take each value in turn (several --vary: each of their combinations in turn), equally "
        "often when --count is a multiple of them; a warning names any left short. Each "
        "file is checked like a hand-written one; none is ever overwritten.",
    )
    p.add_argument("--count", type=int, required=True, metavar="N", help="how many personas")
    p.add_argument("--brief", required=True, metavar="TEXT", help="who the personas are")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="an attribute to spread evenly across the drafts (repeatable)",
    )
    p.add_argument("--table", type=Path, default=Path("."), metavar="DIR",
                   help="the table directory (default: the current directory)")  # fmt: skip
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="settings file (default: DIR/roundtable.yaml if present)")  # fmt: skip
    p.add_argument("--offline", action="store_true",
                   help="use the built-in dummy model even if a server is configured")  # fmt: skip
    s = p.add_argument_group("endpoint (as for a run; override roundtable.yaml)")
    for name in ENDPOINT:
        d = DECLARATIONS[name]
        default = f"{d.help} (default: {d.show(d.default)})"
        s.add_argument(d.flag, dest=name, metavar=d.metavar, help=default.replace("%", "%%"))
    # A run's --seed help speaks of its transcript; drafting writes none.
    d = DECLARATIONS["seed"]
    s.add_argument(d.flag, dest="seed", metavar=d.metavar,
                   help="makes the drafts repeatable; unset, one is drawn and printed at the "
                   "end (each file's top comment has it too) (default: the table's seed, "
                   "else random)")  # fmt: skip


def _brief(text: str) -> str:
    brief = " ".join(sanitize(text).split())
    if not brief:
        raise InputError('--brief: must not be empty; e.g. --brief "residents of a small town"')
    if len(brief) > 2000:
        raise InputError(f"--brief: {len(brief)} characters; keep it under 2000")
    return brief


def _existing(participants: Path) -> list[str]:
    if not participants.is_dir() or not persona_files(participants):
        return []
    # A broken file stops the draft here: its name could not be kept unique.
    return [p.name for p in load_personas(participants)]


def _seed(settings: Settings) -> int:
    return settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)


def file_text(persona: Persona, brief: str, attrs: dict[str, str], seed: int, index: int) -> str:
    """The YAML of a drafted persona: where it came from (brief, attributes) in comments."""
    head = comment(
        f"Drafted by `roundtable personas draft` (seed {seed}, draft {index + 1}) from the "
        f"brief: {brief}"
    )
    if attrs:
        head += comment(f"Attributes: {describe_attrs(attrs)}")
    values = {k: v for k, v in asdict(persona).items() if k in FIELDS}
    text = persona_yaml(values, head + "#\n" + PERSONA_HEADER)
    if Persona.from_dict(yaml.safe_load(text), "draft") != persona:
        raise AssertionError(f"a drafted persona does not read back as written: {text!r}")
    return text


def _client(settings: Settings, url: str, offline: bool) -> ChatClient:
    return ChatClient(
        url,
        "offline" if offline else api_key(settings),
        settings.model,
        settings.timeout,
        compat_mode=settings.compat,
        retries=settings.retries,
        retry_wait=settings.retry_wait,
        notice=_notice,
        key_env=settings.api_key_env,
    )


def _notice(text: str) -> None:
    print(text, file=sys.stderr)


def _check_table(table: Path, config: Path | None) -> None:
    # Drafting into a folder that is no table would scatter participants/ anywhere; a
    # table is what `load_table` reads, so it has task/ (participants/ is what we write).
    made = f"create one with `roundtable init {table}` or pass --table DIR"
    if not table.exists():
        raise InputError(f"{table}: table directory not found; {made}")
    check_directory(table, config)
    if not (table / "task").is_dir():
        raise InputError(f"{table}: not a table (no task/ directory); {made}")


def main(args: argparse.Namespace) -> int:
    """Run `roundtable personas draft`; returns the exit code."""
    table: Path = args.table
    _check_table(table, args.config)
    if not 1 <= args.count <= MAX_COUNT:
        raise InputError(f"--count: must be from 1 to {MAX_COUNT}, got {args.count}")
    brief = _brief(args.brief)
    varies = [parse_vary(v) for v in args.vary]
    check_varies(varies)
    flags = {n: v for n in (*ENDPOINT, "seed") if (v := getattr(args, n, None)) is not None}
    settings, _ = load_settings(table, args.config, flags=flags)
    participants = table / "participants"
    taken = _existing(participants)
    seed = _seed(settings)
    plan = assignments(varies, args.count, seed)
    short = shortfall(varies, plan)
    if short is not None:
        _notice(f"roundtable: warning: {short}")
    offline = args.offline or not settings.base_url
    server = None
    try:
        if offline:
            from dummy_server import BackgroundServer

            server = BackgroundServer()
            url = server.base_url
            _notice(offline_notice(settings, args.offline, url))
        else:
            assert settings.base_url is not None
            url = settings.base_url
        client = _client(settings, url, offline)
        try:
            client.probe()  # a server that is down is an error now, not a refused schema
            written = _draft_all(Drafter(client, seed, _notice), brief, plan, taken, seed,
                                 participants)  # fmt: skip
        finally:
            client.close()
    finally:
        if server is not None:
            server.close()
    error = report_error(len(written), args.count)
    if error is not None:
        raise error
    print(f"roundtable: drafted {len(written)} of {args.count} into {participants} (seed "
          f"{seed}; --seed {seed} drafts the same again); edit them, then: roundtable check "
          f"--table {table}")  # fmt: skip
    return 0


def _draft_all(
    drafter: Drafter,
    brief: str,
    plan: Sequence[dict[str, str]],
    taken: list[str],
    seed: int,
    participants: Path,
) -> list[Path]:
    written = []
    for index, attrs in enumerate(plan):
        label = f"draft {index + 1}/{len(plan)}" + (f" ({describe_attrs(attrs)})" if attrs else "")
        persona, problem = drafter.draft(index, brief, attrs, taken)
        if persona is None:
            _notice(f"roundtable: warning: {label}: skipped after two tries: {problem}")
            continue
        text = file_text(persona, brief, attrs, seed, index)
        path = write_new(participants, slug(persona.name), text)
        taken.append(persona.name)
        written.append(path)
        print(f"roundtable: {label}: {persona.name} -> {path}", flush=True)
    return written
