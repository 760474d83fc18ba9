"""Server-side HTML of a run: the viewer's run page, its live fragments, and the
self-contained file `roundtable export --format html` writes.

Model text only ever reaches the templates as data, and they escape it (autoescape):
nothing a model wrote becomes markup, a link or a script.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .. import __version__
from ..transcript import read_records
from .model import Builder, Item, Placed, place, read_from

TRANSCRIPT = "transcript.jsonl"


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The viewer's Jinja environment: packaged templates, everything escaped."""
    env = Environment(
        loader=PackageLoader("roundtable.view", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = __version__
    return env


@functools.lru_cache(maxsize=4)
def static_text(name: str) -> str:
    """A packaged static file's text (inlined into the standalone page)."""
    return resources.files("roundtable.view").joinpath(f"static/{name}").read_text("utf-8")


@dataclass(frozen=True)
class RunDoc:
    """A run as read for one page: its items, header facts and where the reading stopped."""

    run: Mapping[str, Any]
    items: Sequence[Item]
    colors: Mapping[str, str]
    status: str
    turns: int
    tokens: int
    offset: int  # bytes of transcript.jsonl read: the live stream carries on from here


def lock_alive(run_dir: Path) -> bool:
    """Is the roundtable that locked this run still running? (Read-only: the pid it wrote.)"""
    try:
        pid = int((run_dir / ".lock").read_text(encoding="utf-8").strip() or "0")
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def status_of(run_dir: Path, end: Mapping[str, Any] | None) -> str:
    """completed/failed/interrupted from the end line; running or stopped without one."""
    if end is not None:
        return str(end.get("status") or "ended")
    return "running" if lock_alive(run_dir) else "stopped"


def build(records: Sequence[Mapping[str, Any]]) -> tuple[Builder, list[Item]]:
    """Feed all records to a fresh builder; the items in page order."""
    builder = Builder()
    placed: list[Placed] = []
    for record in records:
        placed += builder.feed(record)
    return builder, place(placed)


def load_run(run_dir: Path) -> RunDoc:
    """Read a run directory's transcript (all complete lines) for a page."""
    records, offset = read_from(run_dir / TRANSCRIPT)
    return _doc(run_dir, records, offset)


def _doc(run_dir: Path, records: Sequence[Mapping[str, Any]], offset: int) -> RunDoc:
    builder, items = build(records)
    status = status_of(run_dir, builder.end)
    return RunDoc(builder.run, items, builder.colors, status, builder.turns, builder.tokens,
                  offset)  # fmt: skip


def render_run(
    doc: RunDoc,
    *,
    title: str,
    standalone: bool = False,
    urls: Mapping[str, Any] | None = None,
    diagram_svg: Markup | None = None,
    **context: Any,
) -> str:
    """The run page; standalone: inline CSS, no scripts, no links back to a server.

    `diagram_svg` fills the moderator-diagram slot; pass Markup (trusted SVG generated
    from the moderator's table): a plain str would be shown escaped, as text.
    """
    run = doc.run
    settings = run.get("settings") if isinstance(run.get("settings"), Mapping) else {}
    template = environment().get_template("run.html")
    return template.render(
        doc=doc,
        run=run,
        settings=settings,
        title=title,
        standalone=standalone,
        css=Markup(static_text("view.css")) if standalone else None,  # our own file
        urls=urls or {},
        live=not standalone and doc.status == "running",
        diagram_svg=diagram_svg,
        **context,
    )


def render_item(item: Item) -> str:
    """One item's HTML fragment (what the live stream sends)."""
    macros: Any = environment().get_template("items.html").module
    return str(macros.item(item))


def moderator_diagram(run: Mapping[str, Any]) -> Markup:
    """The moderator's diagram (graph.py's own SVG, its text escaped there) for the turns
    a run was recorded with; the defaults where the record has none."""
    from dataclasses import replace

    from ..config import Settings
    from ..graph import render

    raw = run.get("settings")
    recorded: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    counts: dict[str, Any] = {
        k: v for k in ("turns", "wrap_up_turns")
        if isinstance(v := recorded.get(k), int) and not isinstance(v, bool) and v >= 0
    }  # fmt: skip
    settings = replace(Settings(), **counts)
    if settings.wrap_up_turns > settings.turns:
        settings = replace(settings, wrap_up_turns=settings.turns)
    return Markup(render("svg", settings))  # generated from TRANSITIONS, not from the run


def standalone_html(run_dir: Path, diagram_svg: Markup | None = None) -> str:
    """One self-contained HTML file of a run: inline CSS, no scripts, no network, printable.

    Without `diagram_svg`, the moderator's diagram for the run's settings is drawn.
    """
    records = read_records(run_dir / TRANSCRIPT)
    doc = _doc(run_dir, records, 0)
    return render_run(
        doc,
        title=run_dir.name,
        standalone=True,
        diagram_svg=diagram_svg if diagram_svg is not None else moderator_diagram(doc.run),
    )
