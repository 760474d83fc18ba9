"""Settings: defaults, then roundtable.yaml, then environment, then flags, into one `Settings`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._validate import describe, is_int, is_number, load_document, suggest
from .client.compat import MODES as COMPAT_MODES
from .errors import InputError

PLACEHOLDER_API_KEY = "not-needed"  # local servers ignore it; the openai client needs one


@dataclass(frozen=True)
class Settings:
    """Every setting of a run. Secrets are not settings: the API key stays in the env."""

    turns: int = 12
    wrap_up_turns: int = 2
    turns_per_topic: int = 4
    ask_opinion_every: int = 4
    introductions: bool = True
    max_tokens: int = 200
    seed: int | None = None
    temperature_scale: float = 1.0
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    stream: bool = True
    context_window: int | None = None
    compat: str = "auto"
    retries: int = 4
    retry_wait: float = 0.5
    fold_summary: str = "extractive"
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    extra_body: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Settings as plain data, with any credentials in the URL removed."""
        data = asdict(self)
        data["base_url"] = redact_url(self.base_url)
        return data

    def sampling(self) -> dict[str, Any]:
        """Optional sampling parameters set for the whole table."""
        keys = ("top_p", "frequency_penalty", "presence_penalty", "extra_body")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    def temperature(self, creativity: float) -> float:
        """The sampling temperature for a persona's creativity."""
        return round(creativity * self.temperature_scale, 4)


# What each setting accepts: (check, description of what is allowed).
_Check = Callable[[Any], bool]
_RULES: dict[str, tuple[_Check, str]] = {
    "turns": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "wrap_up_turns": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "turns_per_topic": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "ask_opinion_every": (lambda v: is_int(v) and v >= 0, "an integer >= 0 (0 = never)"),
    "introductions": (lambda v: isinstance(v, bool), "true or false"),
    "max_tokens": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "seed": (lambda v: v is None or (is_int(v) and 0 <= v < 2**63), "an integer >= 0 or null"),
    "temperature_scale": (lambda v: is_number(v) and 0 <= v <= 2, "a number from 0 to 2"),
    "base_url": (
        lambda v: v is None or (isinstance(v, str) and v.startswith(("http://", "https://"))),
        "an http:// or https:// URL, or null for the built-in offline model",
    ),
    "model": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "a model name"),
    "api_key_env": (
        lambda v: isinstance(v, str) and v.replace("_", "").isalnum(),
        "an environment variable name",
    ),
    "timeout": (lambda v: is_number(v) and v > 0, "a number of seconds > 0"),
    "stream": (lambda v: isinstance(v, bool), "true or false"),
    "context_window": (
        lambda v: v is None or (is_int(v) and v >= 256),
        "an integer >= 256, or null to ask the server",
    ),
    "compat": (lambda v: v in COMPAT_MODES, f"one of {', '.join(COMPAT_MODES)}"),
    "retries": (lambda v: is_int(v) and 0 <= v <= 20, "an integer from 0 to 20"),
    "retry_wait": (lambda v: is_number(v) and 0 <= v <= 60, "a number of seconds from 0 to 60"),
    "fold_summary": (lambda v: v in ("extractive", "model"), "extractive or model"),
    "top_p": (
        lambda v: v is None or (is_number(v) and 0 < v <= 1),
        "a number from 0 to 1, or null",
    ),
    "frequency_penalty": (
        lambda v: v is None or (is_number(v) and -2 <= v <= 2),
        "a number from -2 to 2, or null",
    ),
    "presence_penalty": (
        lambda v: v is None or (is_number(v) and -2 <= v <= 2),
        "a number from -2 to 2, or null",
    ),
    "extra_body": (
        lambda v: v is None or (isinstance(v, dict) and all(isinstance(k, str) for k in v)),
        "a mapping of extra request fields (JSON object), or null",
    ),
}
SETTING_NAMES = tuple(f.name for f in fields(Settings))
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def redact_url(url: str | None) -> str | None:
    """Drop user:password@ from a URL so it can be logged."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=f"***@{netloc}"))


_KINDS: dict[str, type] = {
    "turns": int, "wrap_up_turns": int, "turns_per_topic": int, "ask_opinion_every": int,
    "introductions": bool, "max_tokens": int, "seed": int, "temperature_scale": float,
    "base_url": str, "model": str, "api_key_env": str, "timeout": float, "stream": bool,
    "context_window": int, "compat": str, "retries": int, "retry_wait": float,
    "fold_summary": str, "top_p": float, "frequency_penalty": float, "presence_penalty": float,
    "extra_body": dict,
}  # fmt: skip
_NULLABLE = (
    "seed", "base_url", "model", "context_window", "top_p", "frequency_penalty",
    "presence_penalty", "extra_body",
)  # fmt: skip


def from_string(name: str, text: str) -> Any:
    """Convert a flag or environment string to the setting's type (bad text is kept, to fail)."""
    kind, stripped = _KINDS[name], text.strip()
    if name in _NULLABLE and stripped.lower() in ("", "none", "null"):
        return None
    try:
        if kind is int:
            return int(stripped)
        if kind is float:
            return float(stripped)
    except ValueError:
        return text
    if kind is dict:
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    if kind is bool:
        low = stripped.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    return stripped


def check(name: str, value: Any, source: str) -> Any:
    """Validate one setting's value; the error names where it came from."""
    ok, allowed = _RULES[name]
    if not ok(value):
        raise InputError(f"{source}: must be {allowed}, got {describe(value)}")
    if _KINDS[name] is float and is_int(value):
        return float(value)
    return value


def _from_yaml(path: Path) -> dict[str, Any]:
    data = load_document(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings, got {describe(data)}")
    values = {}
    for key, value in data.items():
        if key not in SETTING_NAMES:
            raise InputError(f'{path}: unknown setting "{key}"{suggest(str(key), SETTING_NAMES)}')
        values[key] = check(key, value, f'{path}: "{key}"')
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    if env.get("OPENAI_BASE_URL"):
        values["base_url"] = check(
            "base_url", from_string("base_url", env["OPENAI_BASE_URL"]), "OPENAI_BASE_URL"
        )
    for name in SETTING_NAMES:
        var = f"ROUNDTABLE_{name.upper()}"
        if var in env:
            values[name] = check(name, from_string(name, env[var]), var)
    return values


def load_settings(
    table_dir: Path,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> tuple[Settings, Path | None]:
    """Resolve settings: flag > env > yaml > default. Returns them and the yaml file used."""
    env = os.environ if env is None else env
    if config_file is None and (table_dir / "roundtable.yaml").is_file():
        config_file = table_dir / "roundtable.yaml"
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_from_yaml(config_file))
    values.update(_from_env(env))
    for name, raw in (flags or {}).items():
        value = from_string(name, raw) if isinstance(raw, str) else raw
        values[name] = check(name, value, f"--{name.replace('_', '-')}")
    settings = replace(Settings(), **values)
    if settings.wrap_up_turns > settings.turns:
        raise InputError(
            f"settings: wrap_up_turns ({settings.wrap_up_turns}) must not exceed turns "
            f"({settings.turns}); lower wrap_up_turns or raise turns"
        )
    return settings, config_file


def api_key(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The API key from the configured environment variable, or a placeholder."""
    env = os.environ if env is None else env
    return env.get(settings.api_key_env) or PLACEHOLDER_API_KEY
