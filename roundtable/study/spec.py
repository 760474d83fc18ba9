"""The experiment file: its schema, validated with `Error: <file>: <key>: ...` lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validate import describe, is_int, is_number, load_document, suggest
from ..config import DECLARATIONS, check
from ..errors import InputError

TABLE_PARTS = ("participants", "task")  # factors that are alternative directories
TOP_KEYS = ("name", "table", "settings", "factors", "seeds", "endpoints", "questionnaire")
ENDPOINT_KEYS = ("name", "base_url", "concurrency", "model", "api_key_env", "structured")
ITEM_KINDS = ("likert", "choice", "number", "text")
ITEM_KEYS = ("id", "kind", "question", "scale", "labels", "options", "min", "max", "when")
WHEN = ("before", "after")
# Settings a study owns: each run's seed comes from `seeds`, its endpoint from `endpoints`.
STUDY_OWNED = ("seed", "base_url", "api_key_env")


@dataclass(frozen=True)
class Endpoint:
    """One server the study's runs are spread over."""

    name: str
    base_url: str | None  # None: the offline dummy model
    concurrency: int = 4
    model: str | None = None
    api_key_env: str | None = None
    structured: bool = True  # send response_format with a JSON schema for answers


@dataclass(frozen=True)
class Item:
    """One questionnaire item."""

    id: str
    kind: str
    question: str
    scale: int = 5
    labels: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    when: tuple[str, ...] = ("after",)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file."""

    path: Path
    name: str
    table: Path
    settings: dict[str, Any]
    factors: dict[str, tuple[Any, ...]]
    seeds: tuple[int, ...]
    endpoints: tuple[Endpoint, ...]
    questionnaire: tuple[Item, ...]


def _fail(path: Path, key: str, what: str) -> InputError:
    return InputError(f"{path}: {key}: {what}")


def _mapping(path: Path, key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, key, f"expected a mapping, got {describe(value)}")
    for k in value:
        if k not in known:
            hint = suggest(str(k), known)
            raise _fail(path, f"{key}.{k}" if key else str(k), f"unknown key{hint}")
    return value


def _setting(path: Path, key: str, name: str, value: Any) -> Any:
    if name not in DECLARATIONS:
        raise _fail(path, key, f"unknown setting{suggest(name, tuple(DECLARATIONS))}")
    if name in STUDY_OWNED:
        where = "seeds" if name == "seed" else "endpoints"
        raise _fail(path, key, f"set by the study; use {where} instead")
    return check(name, value, f"{path}: {key}")


def _directory(path: Path, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, f"expected a directory path, got {describe(value)}")
    found = (path.parent / value).resolve()
    if not found.is_dir():
        raise _fail(path, key, f"directory {found} not found")
    return found


def _factors(path: Path, raw: Any) -> dict[str, tuple[Any, ...]]:
    if raw is None:
        return {}
    out: dict[str, tuple[Any, ...]] = {}
    for name, values in _mapping(path, "factors", raw, (*TABLE_PARTS, *DECLARATIONS)).items():
        key = f"factors.{name}"
        if not isinstance(values, list) or not values:
            raise _fail(path, key, f"expected a non-empty list of values, got {describe(values)}")
        if name in TABLE_PARTS:
            checked = tuple(str(_directory(path, f"{key}[{i}]", v)) for i, v in enumerate(values))
        else:
            checked = tuple(_setting(path, f"{key}[{i}]", name, v) for i, v in enumerate(values))
        if len(set(map(repr, checked))) != len(checked):
            raise _fail(path, key, "a value is listed twice")
        out[name] = checked
    return out


def _seeds(path: Path, raw: Any) -> tuple[int, ...]:
    if raw is None:
        return (0,)
    if is_int(raw) and 1 <= raw <= 100_000:
        return tuple(range(raw))
    if isinstance(raw, list) and raw and all(is_int(s) and 0 <= s < 2**63 for s in raw):
        if len(set(raw)) != len(raw):
            raise _fail(path, "seeds", "a seed is listed twice")
        return tuple(raw)
    raise _fail(
        path,
        "seeds",
        f"expected a count (1 to 100000) or a list of integers >= 0, got {describe(raw)}",
    )


def _endpoint(path: Path, i: int, raw: Any) -> Endpoint:
    key = f"endpoints[{i}]"
    data = _mapping(path, key, raw, ENDPOINT_KEYS)
    url = data.get("base_url")
    if url is not None:
        check("base_url", url, f"{path}: {key}.base_url")
    concurrency = data.get("concurrency", 4)
    if not (is_int(concurrency) and 1 <= concurrency <= 1024):
        raise _fail(
            path,
            f"{key}.concurrency",
            f"must be an integer from 1 to 1024, got {describe(concurrency)}",
        )
    model = data.get("model")
    if model is not None:
        check("model", model, f"{path}: {key}.model")
    key_env = data.get("api_key_env")
    if key_env is not None:
        check("api_key_env", key_env, f"{path}: {key}.api_key_env")
    structured = data.get("structured", True)
    if not isinstance(structured, bool):
        raise _fail(path, f"{key}.structured", f"must be true or false, got {describe(structured)}")
    name = data.get("name", f"e{i}")
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, f"{key}.name", f"must be a name, got {describe(name)}")
    return Endpoint(name, url, concurrency, model, key_env, structured)


def _text(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, f"expected text, got {describe(value)}")
    return value.strip()


def _item(path: Path, i: int, raw: Any) -> Item:
    key = f"questionnaire[{i}]"
    data = _mapping(path, key, raw, ITEM_KEYS)
    for needed in ("id", "kind", "question"):
        if needed not in data:
            raise _fail(path, f"{key}.{needed}", "missing")
    item_id = _text(path, f"{key}.id", data["id"])
    kind = data["kind"]
    if kind not in ITEM_KINDS:
        raise _fail(
            path, f"{key}.kind", f"must be one of {', '.join(ITEM_KINDS)}, got {describe(kind)}"
        )
    question = _text(path, f"{key}.question", data["question"])
    when_raw = data.get("when", ["after"])
    when_list = [when_raw] if isinstance(when_raw, str) else when_raw
    if not (isinstance(when_list, list) and when_list and all(w in WHEN for w in when_list)):
        raise _fail(
            path,
            f"{key}.when",
            f"must be after, before or [before, after], got {describe(when_raw)}",
        )
    when = tuple(w for w in WHEN if w in when_list)
    extra = {k for k in data if k not in ("id", "kind", "question", "when")}
    allowed = {
        "likert": {"scale", "labels"},
        "choice": {"options"},
        "number": {"min", "max"},
        "text": set(),
    }[kind]
    if extra - allowed:
        bad = sorted(extra - allowed)[0]
        raise _fail(path, f"{key}.{bad}", f"does not apply to a {kind} item")
    item = Item(item_id, kind, question, when=when)
    if kind == "likert":
        scale = data.get("scale", 5)
        if not (is_int(scale) and 2 <= scale <= 11):
            raise _fail(
                path, f"{key}.scale", f"must be an integer from 2 to 11, got {describe(scale)}"
            )
        labels = data.get("labels", [])
        if not (
            isinstance(labels, list)
            and all(isinstance(x, str) for x in labels)
            and len(labels) in (0, 2, scale)
        ):
            raise _fail(
                path, f"{key}.labels", f"must be {scale} texts (one per point) or 2 (the ends)"
            )
        return Item(item_id, kind, question, scale=scale, labels=tuple(labels), when=when)
    if kind == "choice":
        options: Any = data.get("options")
        ok = isinstance(options, list) and len(options) >= 2
        if not (ok and all(isinstance(o, str) and o.strip() for o in options)):
            raise _fail(
                path,
                f"{key}.options",
                f"must be a list of at least two texts, got {describe(options)}",
            )
        if len(set(options)) != len(options):
            raise _fail(path, f"{key}.options", "an option is listed twice")
        return Item(item_id, kind, question, options=tuple(options), when=when)
    if kind == "number":
        low, high = data.get("min"), data.get("max")
        for name, v in (("min", low), ("max", high)):
            if v is not None and not is_number(v):
                raise _fail(path, f"{key}.{name}", f"must be a number, got {describe(v)}")
        if low is not None and high is not None and low > high:
            raise _fail(path, f"{key}.min", f"({low}) is above max ({high})")
        return Item(item_id, kind, question, min=low, max=high, when=when)
    return item


def load_experiment(path: Path) -> Experiment:
    """Read and validate an experiment file (YAML or JSON)."""
    if not path.is_file():
        raise InputError(f"{path}: experiment file not found")
    data = _mapping(path, "", load_document(path) or {}, TOP_KEYS)
    if "table" not in data:
        raise _fail(path, "table", "missing; name the base table directory")
    table = _directory(path, "table", data["table"])
    name = data.get("name", path.stem)
    if not (isinstance(name, str) and name.strip() and "/" not in name and name not in ".."):
        raise _fail(path, "name", f"must be a plain name (no /), got {describe(name)}")
    raw_settings = data.get("settings") or {}
    settings = {
        k: _setting(path, f"settings.{k}", str(k), v)
        for k, v in _mapping(path, "settings", raw_settings, tuple(DECLARATIONS)).items()
    }
    factors = _factors(path, data.get("factors"))
    both = set(settings) & set(factors)
    if both:
        raise _fail(path, f"settings.{sorted(both)[0]}", "also a factor; keep it in one place")
    raw_endpoints = data.get("endpoints")
    if raw_endpoints is None:
        endpoints: tuple[Endpoint, ...] = ()
    elif isinstance(raw_endpoints, list) and raw_endpoints:
        endpoints = tuple(_endpoint(path, i, e) for i, e in enumerate(raw_endpoints))
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise _fail(path, "endpoints", "two endpoints have the same name")
    else:
        raise _fail(
            path, "endpoints", f"expected a list of endpoints, got {describe(raw_endpoints)}"
        )
    raw_items = data.get("questionnaire") or []
    if not isinstance(raw_items, list):
        raise _fail(path, "questionnaire", f"expected a list of items, got {describe(raw_items)}")
    items = tuple(_item(path, i, x) for i, x in enumerate(raw_items))
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in first:
            raise _fail(
                path,
                f"questionnaire[{i}].id",
                f"{item.id!r} is also the id of questionnaire[{first[item.id]}]; "
                "give each item its own id",
            )
        first[item.id] = i
    return Experiment(
        path,
        name.strip(),
        table,
        settings,
        factors,
        _seeds(path, data.get("seeds")),
        endpoints,
        items,
    )
