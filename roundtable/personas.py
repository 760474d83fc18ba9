"""Persona files: the `Persona` value and loading + validation of participants/."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._validate import describe, is_number, load_document, quote_hint, suggest
from .config import PERSONA_SETTINGS, SAMPLING, check, plain_fields, redact_url
from .errors import InputError

PERSONA_SUFFIXES = (".json", ".yaml", ".yml")
COLOR_NAMES = (
    "red", "green", "yellow", "blue", "magenta", "cyan", "white",
    "bright_red", "bright_green", "bright_yellow", "bright_blue", "bright_magenta",
    "bright_cyan", "bright_white",
)  # fmt: skip
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RESERVED_NAMES = ("Moderator",)  # compared case-insensitively
_TEXT_FIELDS = ("name", "full_name", "prompt", "introduction")


@dataclass(frozen=True)
class Persona:
    """One participant of the roundtable."""

    name: str
    full_name: str
    prompt: str
    creativity: float = 0.7
    talkativeness: float = 0.5  # weights how often the moderator's draw picks them
    color: str | None = None
    introduction: str | None = None
    # Optional: this persona's own endpoint (a table can mix models and servers)...
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    # ...and its own sampling, over the table's.
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    extra_body: dict[str, Any] | None = None
    # A seat for a person at the terminal (human.py): no prompt, model or sampling.
    human: bool = False
    # The file it came from, so later errors can name it; not part of the persona's value.
    source: str | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "persona") -> Persona:
        """Validate a parsed persona document; errors name the source and field."""
        if data is None:
            raise InputError(f"{source}: the file is empty; a persona needs name, prompt, ...")
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a mapping of fields, got {describe(data)}")
        known = [f for f in cls.__dataclass_fields__ if f != "source"]
        for key in data:
            if key not in known:
                raise InputError(
                    f"{source}: unknown field {describe(key)}{suggest(str(key), known)}; "
                    f"known fields: {', '.join(known)}"
                )
        human = data.get("human", False)
        if not isinstance(human, bool):
            raise InputError(f'{source}: "human" must be true or false, got {describe(human)}')
        for key in ("name", "full_name") if human else ("name", "full_name", "prompt"):
            if key not in data:
                raise InputError(f'{source}: missing required field "{key}"')
        if human:
            _check_human(data, source)
        values: dict[str, Any] = {"human": True} if human else {}
        for key in _TEXT_FIELDS:
            if key not in data or (key == "introduction" and data[key] is None):
                continue
            if human and key == "prompt" and not data[key]:
                continue  # a person needs no prompt (a recorded seat has an empty one)
            value = data[key]
            if not isinstance(value, str):
                hint = quote_hint(source, key, value)
                raise InputError(f'{source}: "{key}" must be text, got {describe(value)}{hint}')
            if not value.strip():
                raise InputError(f'{source}: "{key}" must not be empty')
            values[key] = value.strip()
        name = values["name"]
        if _CONTROL.search(name) or _CONTROL.search(values["full_name"]):
            raise InputError(f'{source}: "name" and "full_name" must be one line of text')
        if name.casefold() in (r.casefold() for r in RESERVED_NAMES):
            raise InputError(f'{source}: "name" {name!r} is reserved; choose another name')
        for key, default in (("creativity", 0.7), ("talkativeness", 0.5)):
            number = data.get(key, default)
            if not is_number(number) or not 0 <= number <= 1:
                raise InputError(
                    f'{source}: "{key}" must be a number from 0 to 1, got {describe(number)}'
                )
            values[key] = float(number)
        color = data.get("color")
        if color is not None:
            if not isinstance(color, str) or not (color in COLOR_NAMES or _HEX_COLOR.match(color)):
                raise InputError(
                    f'{source}: "color" must be one of {", ".join(COLOR_NAMES)} or "#rrggbb", '
                    f"got {describe(color)}"
                )
            values["color"] = color
        for key in PERSONA_SETTINGS:
            if data.get(key) is not None:
                values[key] = check(
                    key, data[key], f'{source}: "{key}"', quote_hint(source, key, data[key])
                )
        values.setdefault("prompt", "")
        return cls(**values)

    def sampling(self) -> dict[str, Any]:
        """This persona's own sampling parameters (they override the table's)."""
        return {k: getattr(self, k) for k in SAMPLING if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The persona as a plain dict (for transcripts), without where it came from and
        without credentials in its base_url."""
        data = plain_fields(self, skip=("source",))
        data["base_url"] = redact_url(self.base_url)
        if not self.human:
            del data["human"]  # model personas' records stay as they were
        return data


# What a person at the terminal has no use for: a model's endpoint and sampling.
_MODEL_ONLY = PERSONA_SETTINGS


def _check_human(data: dict[str, Any], source: str) -> None:
    """A human seat takes no model fields (a recorded one holds them as null)."""
    for key in _MODEL_ONLY:
        if data.get(key) is not None:
            raise InputError(
                f'{source}: "{key}" is for model personas; a human seat ("human": true) '
                "has no model: remove it"
            )


def natural_key(path: Path) -> list[Any]:
    """Sort key that orders role2 before role10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def persona_files(directory: Path) -> list[Path]:
    """The persona files in a directory, in natural file-name order (dotfiles skipped)."""
    files = [
        p
        for p in directory.iterdir()
        if p.suffix.lower() in PERSONA_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=natural_key)


def load_personas(directory: Path) -> list[Persona]:
    """Load and validate every persona file in `directory`."""
    if not directory.is_dir():
        raise InputError(
            f"{directory}: participants directory not found; create it with one "
            ".json or .yaml file per persona"
        )
    files = persona_files(directory)
    if not files:
        raise InputError(f"{directory}: no persona files (*.json, *.yaml) found")
    personas: list[Persona] = []
    seen: dict[str, Path] = {}
    for path in files:
        persona = replace(Persona.from_dict(load_document(path), str(path)), source=str(path))
        key = persona.name.casefold()
        if key in seen:
            raise InputError(
                f'{path}: "name" {persona.name!r} is already used by {seen[key]}; '
                "names must be unique"
            )
        seen[key] = path
        personas.append(persona)
    return personas


def file_stem(name: str, limit: int = 40) -> str:
    """A file name stem for a persona name: lower-case ASCII words joined by -."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:limit] or "persona"
