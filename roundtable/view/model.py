"""A run's records as the viewer's items: moderator lines, introductions, topic headers,
folds and turns, each with its speaker's colour.

The same `Builder` renders a whole page and, fed one record at a time, the live stream,
so a page that was followed live ends up like one loaded afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..display import assign_colors
from ..sanitize import sanitize

# The terminal's named colours as CSS (a common terminal palette); #rrggbb specs pass as is.
CSS_COLORS = {
    "red": "#cd3131", "green": "#0dbc79", "yellow": "#c8c810", "blue": "#2472c8",
    "magenta": "#bc3fbc", "cyan": "#11a8cd", "white": "#b8b8b8",
    "bright_red": "#f14c4c", "bright_green": "#23d18b", "bright_yellow": "#e0d843",
    "bright_blue": "#3b8eea", "bright_magenta": "#d670d6", "bright_cyan": "#29b8db",
    "bright_white": "#d8d8d8",
}  # fmt: skip
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_FALLBACK = "#888888"
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
SECTIONS = {"wrap_up": "Wrap-up", "summary": "Summary"}
TERMINAL = ("completed", "failed", "interrupted", "stopped")


def css_color(spec: str | None) -> str:
    """A colour spec (a terminal colour name or #rrggbb) as a CSS colour; anything else grey."""
    if spec in CSS_COLORS:
        return CSS_COLORS[spec]
    if isinstance(spec, str) and _HEX.match(spec):
        return spec.lower()
    return _FALLBACK


def paragraphs(text: str) -> list[list[str]]:
    """Untrusted text as paragraphs of lines (escaped later, by the template)."""
    clean = sanitize(str(text)).replace("\r\n", "\n").strip()
    out = []
    for para in _PARAGRAPH_BREAK.split(clean):
        lines = [line for line in para.split("\n") if line.strip()]
        if lines:
            out.append(lines)
    return out


def speaker_colors(run: Mapping[str, Any]) -> dict[str, str]:
    """Each participant's CSS colour, assigned as the terminal assigns it."""
    people = [p for p in run.get("participants", []) if isinstance(p, Mapping)]
    specs = assign_colors([p.get("color") for p in people])
    return {str(p.get("name", "?")): css_color(s) for p, s in zip(people, specs, strict=False)}


@dataclass(frozen=True)
class Item:
    """One thing on the page: its kind (a template name), its id, and what it shows."""

    kind: str  # moderator, entry, heading, fold, resume, turn, end
    id: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Placed:
    """An item and where it goes: at the end, or before the item with id `before`."""

    item: Item
    before: str | None = None


@dataclass
class Builder:
    """Turns records into items, one record at a time, remembering phase and topic."""

    colors: dict[str, str] = field(default_factory=dict)
    count: int = 0  # records seen: an item's id is its record's number
    run: Mapping[str, Any] = field(default_factory=dict)
    end: Mapping[str, Any] | None = None
    turns: int = 0
    tokens: int = 0
    _phase: str | None = None
    _topic: str | None = None
    _mark: str | None = None  # the first moderator line right before the next turn

    def feed(self, record: Mapping[str, Any]) -> list[Placed]:
        """The items one record adds (none for a run or unknown record)."""
        rid = f"r{self.count}"
        self.count += 1
        kind = record.get("type")
        if kind == "run":
            self.run = record
            self.colors = speaker_colors(record)
            return []
        if kind == "entry":
            return self._entry(record, rid)
        if kind == "turn":
            return self._turn(record, rid)
        if kind == "fold":
            return [Placed(Item("fold", rid, {"entries": record.get("entries")}))]
        if kind == "resume":
            self._mark = None
            done = _int(record.get("turns_done"))
            return [Placed(Item("resume", rid, {"turn": done + 1}))]
        if kind == "end":
            self.end = record
            data = {"status": str(record.get("status", "?")), "error": record.get("error")}
            return [Placed(Item("end", rid, data))]
        return []

    def _who(self, name: str) -> dict[str, Any]:
        return {"speaker": name, "color": self.colors.get(name, _FALLBACK)}

    def _entry(self, record: Mapping[str, Any], rid: str) -> list[Placed]:
        text = str(record.get("text", ""))
        if record.get("kind") == "moderator":
            self._mark = self._mark or rid
            name = str(record.get("speaker") or "Moderator")
            return [Placed(Item("moderator", rid, {"speaker": name, "text": paragraphs(text)}))]
        self._mark = None
        data = {**self._who(str(record.get("speaker", "?"))), "text": paragraphs(text)}
        data["label"] = str(record.get("kind") or "entry")
        return [Placed(Item("entry", rid, data))]

    def _heading(self, record: Mapping[str, Any]) -> str | None:
        phase = str(record.get("phase"))
        if phase in SECTIONS:
            return SECTIONS[phase] if phase != self._phase else None
        topic = record.get("topic")
        if topic and topic != self._topic:
            return " ".join(sanitize(str(topic)).split())
        return None

    def _turn(self, record: Mapping[str, Any], rid: str) -> list[Placed]:
        out = []
        heading = self._heading(record)
        if heading:
            item = Item("heading", f"{rid}h", {"title": heading})
            out.append(Placed(item, self._mark))
        self._mark = None
        self._phase, self._topic = str(record.get("phase")), record.get("topic")
        self.turns += 1
        prompt = _int(record.get("prompt_tokens"))
        completion = _int(record.get("completion_tokens"))
        self.tokens += prompt + completion
        index = _int(record.get("index"))
        data = {
            **self._who(str(record.get("speaker", "?"))),
            "index": index,
            "number": index + 1,
            "text": paragraphs(str(record.get("text", ""))),
            "human": bool(record.get("human")),
            "handoff": record.get("handoff"),
            "details": _details(record, prompt, completion),
        }
        out.append(Placed(Item("turn", rid, data)))
        return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _details(record: Mapping[str, Any], prompt: int, completion: int) -> list[tuple[str, str]]:
    """A turn's facts as (label, value) rows, in a fixed order."""
    guards = record.get("guards") or []
    chosen = str(record.get("chosen_by") or "")
    if record.get("selection"):
        chosen += f" (selector: {record['selection']})"
    rows = [
        ("phase", record.get("phase")),
        ("topic", record.get("topic") or "—"),
        ("temperature", record.get("temperature")),
        ("tokens", f"{prompt} prompt + {completion} completion ({record.get('tokens_source')})"),
        ("latency", f"{float(record.get('latency_s') or 0):.3f} s"),
        ("model", record.get("model") or "—"),
        ("finish_reason", record.get("finish_reason")),
        ("attempts", record.get("attempts", 1)),
        ("guards", ", ".join(str(g) for g in guards) if guards else "none"),
        ("chosen_by", chosen or "—"),
        ("seed", "—" if record.get("seed") is None else record.get("seed")),
    ]
    return [(label, sanitize(str(value))) for label, value in rows]


def place(placed: Iterable[Placed]) -> list[Item]:
    """Items in page order: each one inserted before the item it names, if any."""
    items: list[Item] = []
    where: dict[str, int] = {}
    for p in placed:
        at = where.get(p.before, len(items)) if p.before else len(items)
        items.insert(at, p.item)
        if at != len(items) - 1:  # ids after it moved down by one
            where = {item.id: n for n, item in enumerate(items)}
        else:
            where[p.item.id] = at
    return items


def _record(line: bytes) -> dict[str, Any] | None:
    """One transcript line as a record; None for a blank, corrupt or non-object line."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, absurd nesting: show the rest
        return None
    return record if isinstance(record, dict) else None


def read_lines(
    path: Path, offset: int = 0, end: int | None = None
) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """Each complete record from byte `offset` on (to byte `end`, if given), with the offset
    just after its line, and the offset after the last complete line; a partial last line
    (or one `end` cuts) waits for the next read. Lines that are not JSON objects are skipped."""
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read() if end is None else f.read(max(end - offset, 0))
    out = []
    start = 0
    while (stop := data.find(b"\n", start)) >= 0:
        record = _record(data[start:stop])
        start = stop + 1
        if record is not None:
            out.append((record, offset + start))
    return out, offset + start


def read_from(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete records from byte `offset` on, and the offset after the last line."""
    lines, end = read_lines(path, offset)
    return [record for record, _ in lines], end
