"""Settings: each declared once; defaults, then roundtable.yaml, environment and flags."""

from __future__ import annotations

import copy
import json
import os
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._validate import describe, is_int, is_number, load_document, quote_hint, suggest
from .client.compat import MODES as COMPAT_MODES
from .errors import InputError
from .speakers import POLICIES

LAYOUTS = ("shared", "chat")

PLACEHOLDER_API_KEY = "not-needed"  # local servers ignore it; the openai client needs one


@dataclass(frozen=True)
class Rule:
    """What a setting accepts beyond its type: a check and how to say what is allowed."""

    ok: Callable[[Any], bool]
    allowed: str


def _at_least(low: int) -> Rule:
    return Rule(lambda v: v >= low, f"an integer >= {low}")


def _range(low: float, high: float, what: str = "a number") -> Rule:
    return Rule(lambda v: low <= v <= high, f"{what} from {low:g} to {high:g}")


def _one_of(*choices: str) -> Rule:
    return Rule(lambda v: v in choices, f"one of {', '.join(choices)}")


@dataclass(frozen=True)
class Declaration:
    """One setting as declared on `Settings`: everything else is derived from these."""

    name: str
    kind: type  # int, float, bool, str or dict: from the type annotation
    default: Any
    nullable: bool  # from the annotation: X | None
    rule: Rule
    help: str
    metavar: str | None = None  # None: no flag, except for booleans (--x and --no-x)
    unset: str = ""  # what null means, for settings that may be null
    env: tuple[str, ...] = ()  # environment variables, strongest first
    persona: bool = False  # a persona file may set its own
    resumable: bool = False  # a flag may change it on --resume
    sampling: bool = False  # a sampling parameter, sent only when set

    @property
    def flag(self) -> str | None:
        """The command-line flag, or None; booleans that default true are shown as --no-x."""
        if self.kind is not bool and not self.metavar:
            return None
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.kind is bool and self.default else f"--{dashed}"

    @property
    def allowed(self) -> str:
        """What the setting accepts, for error messages."""
        return (
            f"{self.rule.allowed}, or null ({self.unset})" if self.nullable else self.rule.allowed
        )

    def show(self, value: Any) -> str:
        """A value as a user would write it (null says what it means)."""
        if value is None:
            return self.unset
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)


def _setting(default: Any, rule: Rule, help: str, **roles: Any) -> Any:
    # The name, type and nullability are filled in from the field itself, in _declare().
    declared = Declaration("", object, default, False, rule, help, **roles)
    return field(default=default, metadata={"setting": declared})


_BOOL = Rule(lambda v: True, "true or false")


def plain_fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A settings or persona dataclass as a dict, field by field: dataclasses.asdict
    deep-copies every value, and a study records these for every run. Only extra_body,
    the one mutable field, is copied."""
    data = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in skip}
    if data.get("extra_body") is not None:
        data["extra_body"] = copy.deepcopy(data["extra_body"])
    return data


def _http_url(value: str) -> bool:
    """An http:// or https:// URL with a host and, if any, a numeric port."""
    if not value.startswith(("http://", "https://")):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return bool(parts.hostname)


_HTTP_URL = Rule(_http_url, "an http:// or https:// URL")


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, declared once; the API key is not one (it stays in the env)."""

    # fmt: off
    # --- the discussion ---
    turns: int = _setting(12, _at_least(1), "persona turns before the closing summary",
                          metavar="N")
    wrap_up_turns: int = _setting(2, _at_least(0), "how many of those are closing remarks",
                                  metavar="N")
    turns_per_topic: int = _setting(
        4, _at_least(1), "average turns per question (each topic lasts a uniformly drawn "
        "number of turns whose mean is N)", metavar="N")
    ask_opinion_every: int = _setting(
        4, _at_least(0), "about every N discussion "
        "turns (chance 1/N), the speaker is asked to invite someone's view; 0 = never",
        metavar="N")
    introductions: bool = _setting(
        True, _BOOL, "personas introduce themselves from their files (no model call)")
    max_tokens: int = _setting(200, _at_least(1), "cap on every reply; always sent", metavar="N")
    seed: int | None = _setting(
        None, Rule(lambda v: 0 <= v < 2**63, "an integer >= 0"), "makes the run "
        "reproducible; unset, one is drawn and recorded in the transcript", metavar="N",
        unset="random", persona=True)
    temperature_scale: float = _setting(1.0, _range(0, 2), "temperature = creativity x this",
                                        metavar="X")
    layout: str = _setting(
        "shared", _one_of(*LAYOUTS), "how a request is laid out: shared (one system message "
        "for all, the transcript, the speaker's part last: one cacheable prefix) or chat (the "
        "speaker's persona as the system message, its own turns as assistant messages)",
        metavar="NAME")
    speaker_selection: str = _setting(
        "natural", _one_of(*POLICIES), "who speaks next: natural (whoever is addressed, "
        "else a draw favouring the quiet), round_robin, random, or llm (a model chooses)",
        metavar="POLICY")
    max_pair_handoffs: int = _setting(
        3, _at_least(1), "two participants may pass the floor back and forth this many "
        "times in a row; then the moderator invites someone else", metavar="N")
    human_may_summarise: bool = _setting(
        False, _BOOL, "a human participant may be asked for the closing summary when they "
        "alone spoke most (otherwise the model participant who spoke most summarises)")
    selector_model: str | None = _setting(
        None, Rule(lambda v: v.strip() != "", "a model name"), "the model that picks the "
        "next speaker with speaker_selection llm", metavar="NAME",
        unset="the table's model", resumable=True)
    selector_base_url: str | None = _setting(
        None, _HTTP_URL,
        "the endpoint of the selector model", metavar="URL", unset="the table's endpoint",
        resumable=True)
    # --- the endpoint (a persona may have its own; a resumed run may be given a new one) ---
    base_url: str | None = _setting(
        None, _HTTP_URL,
        "the OpenAI-compatible endpoint, e.g. http://localhost:8000/v1", metavar="URL",
        unset="the offline dummy model", env=("OPENAI_BASE_URL",), persona=True, resumable=True)
    model: str | None = _setting(
        None, Rule(lambda v: v.strip() != "", "a model name"), "the model to ask",
        metavar="NAME", unset="the first model the server lists", persona=True, resumable=True)
    api_key_env: str = _setting(
        "OPENAI_API_KEY", Rule(lambda v: v.replace("_", "").isalnum(),
                               "an environment variable name"),
        "the environment variable holding the API key", metavar="VAR", persona=True,
        resumable=True)
    timeout: float = _setting(120.0, Rule(lambda v: v > 0, "a number of seconds > 0"),
                              "seconds per request", metavar="S", resumable=True)
    stream: bool = _setting(True, _BOOL, "stream replies as they are written", resumable=True)
    context_window: int | None = _setting(
        None, _at_least(256), "the model's context in tokens (vLLM reports it; llama.cpp "
        "servers do not: set it)", metavar="N", unset="ask the server")
    compat: str = _setting(
        "auto", _one_of(*COMPAT_MODES), f"message layout: {', '.join(COMPAT_MODES)}",
        metavar="MODE", resumable=True)
    retries: int = _setting(
        4, _range(0, 20, "an integer"), "retries of a failed request (429, 5xx, connection, "
        "timeout)", metavar="N", resumable=True)
    retry_wait: float = _setting(
        0.5, _range(0, 60, "a number of seconds"), "first retry delay in seconds, doubling up "
        "to 8 (a server's Retry-After wins)", metavar="S", resumable=True)
    fold_summary: str = _setting(
        "extractive", _one_of("extractive", "model"), "how folded turns are recapped: "
        "extractive (first sentences) or model (the model summarises)", metavar="HOW")
    guard_retries: int = _setting(
        2, _range(0, 5, "an integer"), "re-asks of a reply that echoes the discussion, "
        "recites its instructions or speaks as someone else (new seed, stronger "
        "anti-repetition sampling); then its offending sentences are cut; 0 = cut at once",
        metavar="N")
    echo_threshold: float = _setting(
        0.5, _range(0, 1), "a reply is echo when more than this share of its word 5-grams "
        "were said earlier in the run", metavar="X")
    leak_threshold: float = _setting(
        0.0, _range(0, 1), "a reply leaks its instructions when more than this share of its "
        "word 6-grams is copied from the prompts it was sent (0 = any)", metavar="X")
    identity_guard: bool = _setting(
        True, _BOOL, "re-ask a reply that claims another participant's name or to be an AI")
    # --- sampling (a persona may set its own) ---
    top_p: float | None = _setting(
        None, Rule(lambda v: 0 < v <= 1, "a number from 0 to 1"), "nucleus sampling",
        metavar="P", unset="the server's default", persona=True, sampling=True)
    frequency_penalty: float | None = _setting(
        None, _range(-2, 2), "penalise tokens by how often they appeared", metavar="X",
        unset="the server's default", persona=True, sampling=True)
    presence_penalty: float | None = _setting(
        None, _range(-2, 2), "penalise tokens that appeared at all", metavar="X",
        unset="the server's default", persona=True, sampling=True)
    extra_body: dict[str, Any] | None = _setting(
        None, Rule(lambda v: all(isinstance(k, str) for k in v),
                   "a mapping of extra request fields (JSON object)"),
        "extra request fields passed to the server as they are, e.g. min_p",
        unset="no extra fields", persona=True, sampling=True)
    # fmt: on

    def to_dict(self) -> dict[str, Any]:
        """Settings as plain data, with any credentials in the URL removed."""
        data = plain_fields(self)
        for key in ("base_url", "selector_base_url"):
            data[key] = redact_url(getattr(self, key))
        return data

    def sampling(self) -> dict[str, Any]:
        """Optional sampling parameters set for the whole table."""
        return {k: getattr(self, k) for k in SAMPLING if getattr(self, k) is not None}

    def temperature(self, creativity: float) -> float:
        """The sampling temperature for a persona's creativity."""
        return round(creativity * self.temperature_scale, 4)


_TYPE_CHECKS: dict[type, Callable[[Any], bool]] = {
    int: is_int,
    float: is_number,
    bool: lambda v: isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    dict: lambda v: isinstance(v, dict),
}


def _declare() -> dict[str, Declaration]:
    hints = typing.get_type_hints(Settings)
    out = {}
    for f in fields(Settings):
        args = typing.get_args(hints[f.name])
        kind = next(a for a in args if a is not type(None)) if args else hints[f.name]
        d: Declaration = f.metadata["setting"]
        out[f.name] = replace(
            d,
            name=f.name,
            kind=typing.get_origin(kind) or kind,
            nullable=type(None) in args,
            env=(f"ROUNDTABLE_{f.name.upper()}", *d.env),
        )
    return out


DECLARATIONS: dict[str, Declaration] = _declare()
SETTING_NAMES = tuple(DECLARATIONS)
# Settings a persona file may set for itself (validated by the same rules).
# Persona fields that are not settings, so a misplaced one in roundtable.yaml is named
# as such (tests/test_personas.py checks they are Persona fields).
PERSONA_ONLY = ("name", "full_name", "prompt", "creativity", "talkativeness", "color",
                "introduction")  # fmt: skip
PERSONA_SETTINGS = tuple(d.name for d in DECLARATIONS.values() if d.persona)
# Sampling parameters sent only when set (by the table or a persona).
SAMPLING = tuple(d.name for d in DECLARATIONS.values() if d.sampling)
# Settings a resumed run may take anew: how to reach the model, never what the discussion is.
RESUMABLE: frozenset[str] = frozenset(d.name for d in DECLARATIONS.values() if d.resumable)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def from_string(name: str, text: str) -> Any:
    """Convert a flag or environment string to the setting's type (bad text is kept, to fail)."""
    d, stripped = DECLARATIONS[name], text.strip()
    if d.nullable and stripped.lower() in ("", "none", "null"):
        return None
    try:
        if d.kind is int:
            return int(stripped)
        if d.kind is float:
            return float(stripped)
    except ValueError:
        return text
    if d.kind is dict:
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    if d.kind is bool:
        low = stripped.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    return stripped


def check(name: str, value: Any, source: str, hint: str = "") -> Any:
    """Validate one setting's value; the error names where it came from (and adds hint)."""
    d = DECLARATIONS[name]
    if value is None and d.nullable:
        return None
    if not (_TYPE_CHECKS[d.kind](value) and d.rule.ok(value)):
        hint = hint if d.kind is str else ""
        raise InputError(f"{source}: must be {d.allowed}, got {describe(value)}{hint}")
    return float(value) if d.kind is float else value


_SECRET_QUERY = re.compile(
    r"(key|token|secret|password|passwd|pwd|signature|sig|auth|authorization|credential)s?$"
)


def _secret_param(name: str) -> bool:
    return bool(_SECRET_QUERY.search(name.lower().replace("-", "").replace("_", "")))


def redact_url(url: str | None) -> str | None:
    """Mask user:password@ and credentials in the query string, so a URL can be logged."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        parts = parts._replace(netloc=f"***@{netloc}")
    if parts.query:
        pairs = [p.partition("=") for p in parts.query.split("&")]
        query = "&".join(
            f"{k}={'***' if _secret_param(k) and v else v}" if eq else k for k, eq, v in pairs
        )
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def _settings_files(table_dir: Path) -> list[Path]:
    return [p for p in (table_dir / "roundtable.yaml", table_dir / "roundtable.yml") if p.is_file()]


def _from_yaml(path: Path) -> dict[str, Any]:
    data = load_document(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings, got {describe(data)}")
    values = {}
    for key, value in data.items():
        if key not in DECLARATIONS:
            where = suggest(str(key), SETTING_NAMES)
            if not where and key in PERSONA_ONLY:
                where = f"; {key} is a persona field: set it in a file in participants/"
            raise InputError(f"{path}: unknown setting {describe(key)}{where}")
        values[key] = check(key, value, f'{path}: "{key}"', quote_hint(str(path), key, value))
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    values = {}
    for d in DECLARATIONS.values():
        own, *others = d.env
        # ROUNDTABLE_<NAME> counts when present (empty = null); the others only when set.
        var = own if own in env else next((v for v in others if env.get(v)), None)
        if var is not None:
            values[d.name] = (check(d.name, from_string(d.name, env[var]), var), var)
    return values


def load_settings(
    table_dir: Path,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> tuple[Settings, Path | None]:
    """Resolve settings: flag > env > yaml > default. Returns them and the yaml file used."""
    env = os.environ if env is None else env
    if config_file is None:
        found = _settings_files(table_dir)
        if len(found) > 1:
            raise InputError(f"{found[1]}: {found[0].name} is here too; keep one settings file")
        config_file = found[0] if found else None
    values: dict[str, Any] = {}
    # Where each value came from: (strength, start of an error line, how to change it there).
    sources: dict[str, tuple[int, str, str]] = {}
    if config_file is not None:
        for key, value in _from_yaml(config_file).items():
            values[key] = value
            sources[key] = (1, str(config_file), f"{key} in {config_file.name}")
    for key, (value, var) in _from_env(env).items():
        values[key], sources[key] = value, (2, var, var)
    for name, raw in (flags or {}).items():
        flag = f"--{name.replace('_', '-')}"
        value = from_string(name, raw) if isinstance(raw, str) else raw
        values[name], sources[name] = check(name, value, flag), (3, flag, flag)
    settings = replace(Settings(), **values)
    return _fit_wrap_up(settings, sources), config_file


def _fit_wrap_up(settings: Settings, sources: Mapping[str, tuple[int, str, str]]) -> Settings:
    if settings.wrap_up_turns <= settings.turns:
        return settings
    turns = sources.get("turns", (0, "", "--turns"))
    wrap_up = sources.get("wrap_up_turns", (0, "", ""))
    if wrap_up[0] < turns[0]:
        # turns was set more strongly (e.g. --turns 1 over the default or the file's
        # wrap-up): it wins, as precedence says, so the wrap-up shrinks to fit.
        return replace(settings, wrap_up_turns=settings.turns)
    fix = f"lower {wrap_up[2]} to {settings.turns} or raise {turns[2]}"
    if wrap_up[0] < 3:  # not a flag: one can still override it
        fix = f"add --wrap-up-turns {settings.turns}, {fix}"
    raise InputError(
        f"{wrap_up[1]}: wrap_up_turns ({settings.wrap_up_turns}) must not exceed turns "
        f"({settings.turns}); {fix}"
    )


def api_key(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The API key from the configured environment variable, or a placeholder."""
    env = os.environ if env is None else env
    key = env.get(settings.api_key_env) or PLACEHOLDER_API_KEY
    if any(c in key for c in "\r\n\0") or not key.isascii():
        # It would break the request's head (transport.py refuses to send it): say so here,
        # naming the variable, never the key.
        raise InputError(
            f"{settings.api_key_env}: the API key holds a line break or a non-ASCII character; "
            "set the variable again to the key alone"
        )
    return key


def offline_notice(settings: Settings, forced: bool, url: str, own: Sequence[str] = ()) -> str:
    """What to say when running on the built-in dummy model at `url`."""
    where = f"using the built-in offline dummy model at {url}"
    if own:
        return (
            f"roundtable: no table server configured; {where} for the table "
            f"({', '.join(own)}: their own endpoint)"
        )
    if forced and settings.base_url:
        return (
            f"roundtable: --offline overrides the configured base URL "
            f"({redact_url(settings.base_url)}); {where}"
        )
    if forced:
        return f"roundtable: --offline: {where}"
    return f"roundtable: no server configured; {where} (set --base-url to use a real model)"


def settings_markdown() -> str:
    """The README's settings table, rendered from the declarations."""
    yes = {True: "yes", False: ""}
    rows = [
        "| setting | default | flag | accepts | persona | resume | meaning |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in DECLARATIONS.values():
        default = "null" if d.default is None else f"`{d.show(d.default)}`"
        if d.flag is None:
            flag = f"none: YAML, or JSON in `{d.env[0]}`"
        else:
            flag = f"`{d.flag}{'' if d.kind is bool else ' ' + str(d.metavar)}`"
        rows.append(
            f"| `{d.name}` | {default} | {flag} | {d.allowed} | {yes[d.persona]} | "
            f"{yes[d.resumable]} | {d.help} |"
        )
    return "\n".join(rows) + "\n"
