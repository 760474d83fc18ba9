"""A table: loading and validating it from its directory, or from a recorded run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .client import ChatClient, SharedFacts
from .config import (
    RESUMABLE,
    Settings,
    api_key,
    check,
    from_string,
    load_settings,
    redact_url,
)
from .errors import InputError
from .personas import Persona, load_personas
from .prompts import Prompts
from .task import Task, load_task
from .transcript import read_records


@dataclass(frozen=True)
class Table:
    """A validated table directory: personas, task, settings and templates."""

    directory: Path
    personas: tuple[Persona, ...]
    task: Task
    settings: Settings
    config_file: Path | None
    prompts: Prompts


def load_table(
    directory: Path,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Table:
    """Load and validate everything a run needs, before any model call."""
    check_directory(directory, config_file)
    settings, used = load_settings(directory, config_file, env, flags)
    personas = tuple(load_personas(directory / "participants"))
    if len(personas) < 2:
        raise InputError(
            f"{directory / 'participants'}: only one persona ({personas[0].source}); a "
            "roundtable needs at least two participants: add another persona file"
        )
    task = load_task(directory / "task")
    prompts = Prompts(directory, task, personas)
    return Table(directory, personas, task, settings, used, prompts)


def check_directory(directory: Path, config_file: Path | None = None) -> None:
    """Refuse a --table that is not a directory, or a --config that is not a file."""
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: is a file, not a table directory; pass --table DIR")
    if not directory.is_dir():
        raise InputError(f"{directory}: table directory not found; pass --table DIR")
    if config_file is not None and not config_file.is_file():
        raise InputError(f"{config_file}: config file not found (--config)")


@dataclass(frozen=True)
class Clients:
    """A client per persona, and the table's own (it writes fold summaries)."""

    personas: dict[str, ChatClient]
    table: ChatClient  # the client for the table's endpoint; shared where endpoints match
    selector: ChatClient | None = None  # speaker_selection llm: the model that picks

    def distinct(self) -> list[ChatClient]:
        """Each client once (personas that share an endpoint share a client)."""
        every = [*self.personas.values(), self.table, *([self.selector] if self.selector else [])]
        return list({id(c): c for c in every}.values())

    def close(self) -> None:
        """Release every client's connections."""
        for client in self.distinct():
            client.close()


def build_clients(
    table: Table,
    default_url: str,
    *,
    offline: bool = False,
    everyone: bool | None = None,
    env: Mapping[str, str] | None = None,
    notice: Callable[[str], None] | None = None,
    debug: Callable[[str], None] | None = None,
    facts: SharedFacts | None = None,
    gather: float = 0.0,
) -> Clients:
    """A client per persona and the table's; personas that share an endpoint share a client
    (and, with `facts`, clients built apart share what each server said).

    `offline`: `default_url` is the built-in dummy model. `everyone` (default: `offline`):
    personas' and the selector's own endpoints go there too, as with --offline; without
    it a persona's own `base_url` is kept when only the table has no server. `gather`: for
    runs nobody watches (ChatClient).
    """
    s = table.settings
    everyone = offline if everyone is None else everyone
    shared: dict[tuple[str, str | None, str], ChatClient] = {}

    def client(url: str, model: str | None, key_env: str) -> ChatClient:
        key = (url, model, key_env)
        if key not in shared:
            dummy = offline and url == default_url
            secret = "offline" if dummy else api_key(replace(s, api_key_env=key_env), env)
            shared[key] = ChatClient(
                url,
                secret,
                model,
                s.timeout,
                compat_mode=s.compat,
                retries=s.retries,
                retry_wait=s.retry_wait,
                notice=notice,
                key_env=key_env,
                debug=debug,
                facts=facts.of(url, model, key_env) if facts else None,
                gather=gather,
            )
        return shared[key]

    personas = {}
    for p in table.personas:
        if p.human:
            # A person has no model; the table's endpoint counts their words' tokens.
            personas[p.name] = client(default_url, s.model, s.api_key_env)
            continue
        url = default_url if everyone else (p.base_url or default_url)
        model = p.model or (s.model if url == default_url else None)
        personas[p.name] = client(url, model, p.api_key_env or s.api_key_env)
    selector = None
    if s.speaker_selection == "llm":
        url = default_url if everyone else (s.selector_base_url or default_url)
        selector = client(url, s.selector_model or (s.model if url == default_url else None),
                          s.api_key_env)  # fmt: skip
    return Clients(personas, client(default_url, s.model, s.api_key_env), selector)


def own_endpoints(table: Table) -> list[str]:
    """Who has an endpoint of their own: personas with a `base_url`, and the llm selector."""
    own = [p.name for p in table.personas if p.base_url and not p.human]
    s = table.settings
    if s.speaker_selection == "llm" and s.selector_base_url:
        own.append("the speaker selector")
    return own


def default_out_dir(table_dir: Path) -> Path:
    """outputs/<timestamp>/ inside the table, made unique."""
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    base = table_dir / "outputs" / stamp
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{stamp}-{n}")
    return candidate


# Settings a resumed run may take from flags (declared in config.py).
RESUME_FLAGS = RESUMABLE


def run_directory(path: Path) -> Path:
    """The run directory named by --resume (the directory, or its transcript.jsonl)."""
    run_dir = path.parent if path.name == "transcript.jsonl" and path.is_file() else path
    if not (run_dir / "transcript.jsonl").is_file():
        raise InputError(
            f"{run_dir}: no transcript.jsonl here; pass the run directory a run printed"
        )
    return run_dir


def _masked(url: str | None) -> bool:
    # redact_url masks user:password@ and secret query values with ***; such a URL was
    # recorded without its credentials, so sending it would fail (or worse, half-work).
    if not url:
        return False
    parts = urlsplit(url)
    query = (pair.partition("=")[2] for pair in parts.query.split("&"))
    return parts.netloc.startswith("***@") or "***" in query


def _with_credentials(persona: Persona, directory: Path, jsonl: Path) -> Persona:
    # A persona's URL credentials are not recorded: take them from its file, if that
    # still names the same endpoint; otherwise the run cannot reach it.
    if not _masked(persona.base_url):
        return persona
    try:
        files = {p.name: p for p in load_personas(directory / "participants")}
    except InputError:
        files = {}
    same = files.get(persona.name)
    if same is None or redact_url(same.base_url) != persona.base_url:
        raise InputError(
            f"{jsonl}: {persona.name}'s base_url held credentials, which are not recorded, "
            f"and {directory / 'participants'} no longer has them; restore that persona "
            "file's base_url (or give the key through api_key_env) to resume"
        )
    return replace(persona, base_url=same.base_url)


def load_run(
    run_dir: Path, flags: Mapping[str, Any], *, credentials: bool = True
) -> tuple[Table, dict[str, Any]]:
    """Rebuild a recorded run's table from its transcript (not from the files, which may
    have changed since). Returns the table and {"run", "turns", "status", "records"}.
    `credentials=False` (a replay that calls no endpoint) leaves masked URLs as recorded."""
    run_dir = run_directory(run_dir)
    jsonl = run_dir / "transcript.jsonl"
    records = read_records(jsonl)
    run = records[0] if records else {}
    needed = ("settings", "participants", "questions", "task", "prompts")
    if run.get("type") != "run" or any(k not in run for k in needed):
        raise InputError(f"{jsonl}: no complete run record on line 1; cannot resume this run")
    for name in flags:
        if name not in RESUME_FLAGS:
            raise InputError(
                f"--{name.replace('_', '-')}: cannot be changed when resuming (the run's own "
                "settings are used); only the endpoint flags can"
            )
    values = {}
    for key, value in run["settings"].items():
        values[key] = check(key, value, f"{jsonl}: settings.{key}")
    for key, raw in flags.items():
        values[key] = check(key, from_string(key, raw) if isinstance(raw, str) else raw, f"--{key}")
    settings = Settings(**values)
    for key in ("base_url", "selector_base_url"):
        if credentials and _masked(getattr(settings, key)) and key not in flags:
            raise InputError(
                f"{jsonl}: the run's {key} held credentials, which are not recorded; "
                f"pass --{key.replace('_', '-')} again"
            )
    source = f"{jsonl}: participants"
    personas = tuple(Persona.from_dict(p, source=source) for p in run["participants"])
    if credentials:
        personas = tuple(_with_credentials(p, Path(run["table"]), jsonl) for p in personas)
    task = Task(questions=tuple(run["questions"]), **run["task"])
    directory = Path(run["table"])
    prompts = Prompts(directory, task, personas, sources=run["prompts"])
    turns = [r for r in records if r.get("type") == "turn"]
    ends = [r for r in records if r.get("type") == "end"]
    status = ends[-1]["status"] if ends and records[-1].get("type") == "end" else "unfinished"
    table = Table(directory, personas, task, settings, None, prompts)
    return table, {"run": run, "turns": turns, "status": status, "records": records}
