"""Small helpers shared by the loaders: reading files and checking values."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

MAX_FILE_BYTES = 1024 * 1024


def read_text(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file of at most 1 MiB (a leading BOM dropped), or raise naming it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(f"{path}: expected a file, found a directory")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: file is {size} bytes; the limit is 1 MiB ({MAX_FILE_BYTES})")
    try:
        # utf-8-sig: editors on Windows start files with a BOM, which is not text.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


class _DuplicateKeyError(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise _DuplicateKeyError(key)
    return dict(pairs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {describe(key)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def load_document(path: Path) -> Any:
    """Parse a .json, .yaml or .yml file (any case); a key given twice is an error."""
    text = read_text(path)
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except _DuplicateKeyError as exc:
            raise InputError(f"{path}: duplicate key {describe(exc.args[0])}") from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: invalid YAML{where}: {problem}") from None


def quote_hint(source: str, key: str, value: Any) -> str:
    """A hint for text that YAML read as a boolean or number (name: No), or ''."""
    if not source.lower().endswith((".yaml", ".yml")) or not isinstance(value, (int, float)):
        return ""
    example = ("Yes" if value else "No") if isinstance(value, bool) else value
    return f'; YAML reads it as {describe(value)}: put the text in quotes, e.g. {key}: "{example}"'


def suggest(key: str, known: Iterable[str]) -> str:
    """A ' (did you mean "x"?)' hint for a misspelled key, or ''."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def describe(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def is_number(value: Any) -> bool:
    """True for finite ints and floats (not bools)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    """True for ints (not bools)."""
    return isinstance(value, int) and not isinstance(value, bool)
