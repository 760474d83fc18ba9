"""`roundtable graph`: the moderator's state machine drawn from its transition table.

Everything is read from `moderator.TRANSITIONS` when drawn (states, edges, the guards'
function names as labels), so the picture cannot drift from the code. With settings, a
label also says where its guard stops holding, found by asking the guard itself.
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import moderator
from .config import Settings, load_settings
from .errors import InputError
from .table import check_directory

FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class Edge:
    """One row of the table: from `source`, `guard` holding, to `target`."""

    source: str
    target: str
    guard: str
    figure: str  # where the guard stops holding under the settings ("" if always or unknown)

    @property
    def label(self) -> str:
        """The guard's name, with the figure when there is one."""
        return f"{self.guard} ({self.figure})" if self.figure else self.guard


@dataclass
class _Probe:
    """What a guard reads (moderator._Counts), set to one moment of a discussion."""

    turns: int
    wrap_up_turns: int
    turns_done: int


def _figure(guard: Callable[[Any], bool], settings: Settings | None) -> str:
    """'turns done < N' when the guard holds exactly until N turns are done, else ''."""
    if settings is None:
        return ""
    try:
        holds = [guard(_Probe(settings.turns, settings.wrap_up_turns, done))
                 for done in range(settings.turns + 2)]  # fmt: skip
    except (AttributeError, TypeError):
        return ""  # a guard that reads more than the counts: drawn by its name alone
    limit = holds.index(False) if False in holds else None
    if limit is None or any(holds[limit:]):
        return ""  # always, or not a simple threshold
    return f"turns done < {limit}"


def states() -> list[str]:
    """The states in the order a discussion passes through them."""
    table = moderator.TRANSITIONS
    named = {p for p in table} | {t for rows in table.values() for _, t in rows}
    return [p.value for p in moderator.Phase if p in named]


def edges(settings: Settings | None = None) -> list[Edge]:
    """Every row of the transition table, in order."""
    return [
        Edge(source.value, target.value, guard.__name__, _figure(guard, settings))
        for source, rows in moderator.TRANSITIONS.items()
        for guard, target in rows
    ]


def _finals() -> list[str]:
    return [p.value for p, rows in moderator.TRANSITIONS.items() if not rows]


# -- mermaid ------------------------------------------------------------------------------
_MERMAID_CODES = {"#": "#35;", "<": "#lt;", ">": "#gt;", '"': "#quot;", ";": "#59;", ":": "#58;"}


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes, character by character (a code's own '#' and ';' stay).
    return "".join(_MERMAID_CODES.get(char, char) for char in text)


def to_mermaid(settings: Settings | None = None) -> str:
    """A mermaid stateDiagram (GitHub renders it in Markdown)."""
    lines = ["stateDiagram-v2", f"    [*] --> {states()[0]}"]
    lines += [f"    {e.source} --> {e.target}: {_mermaid_text(e.label)}" for e in edges(settings)]
    lines += [f"    {state} --> [*]" for state in _finals()]
    return "\n".join(lines) + "\n"


# -- dot ----------------------------------------------------------------------------------
def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(settings: Settings | None = None) -> str:
    """A Graphviz digraph."""
    lines = ["digraph moderator {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for state in states():
        shape = ", peripheries=2" if state in _finals() else ""
        lines.append(f"    {_dot_text(state)} [label={_dot_text(state)}{shape}];")
    for e in edges(settings):
        lines.append(f"    {_dot_text(e.source)} -> {_dot_text(e.target)} "
                     f"[label={_dot_text(e.label)}];")  # fmt: skip
    return "\n".join([*lines, "}"]) + "\n"


# -- svg ----------------------------------------------------------------------------------
_STEP, _W, _H = 240, 110, 36  # node spacing, width, height
_LEFT, _TOP = 40, 110  # the start dot's x; the row's y


def _text(x: float, y: float, text: str, cls: str) -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" class="{cls}">'
            f"{html.escape(text, quote=True)}</text>")  # fmt: skip


def _label(x: float, y: float, edge: Edge, below: bool) -> list[str]:
    """The guard's name and, on the next line, its figure (away from the arrow)."""
    lines = [edge.guard, edge.figure] if edge.figure else [edge.guard]
    if not below:
        lines.reverse()
    step = 13 if below else -13
    return [_text(x, y + n * step, line, "label") for n, line in enumerate(lines)]


def _edge_svg(i: int, j: int, edge: Edge) -> list[str]:
    x0, x1, y = _x(i), _x(j), _TOP
    if i == j:  # a self-loop above the node
        top = y - _H / 2
        path = (f"M {x0 - 18:.0f} {top:.0f} C {x0 - 50:.0f} {top - 60:.0f} "
                f"{x0 + 50:.0f} {top - 60:.0f} {x0 + 18:.0f} {top:.0f}")  # fmt: skip
        return [f'<path d="{path}" class="edge"/>', *_label(x0, top - 52, edge, below=False)]
    if j == i + 1:  # the next state: a straight arrow, its label above
        path = f"M {x0 + _W / 2:.0f} {y:.0f} L {x1 - _W / 2 - 2:.0f} {y:.0f}"
        return [f'<path d="{path}" class="edge"/>', *_label((x0 + x1) / 2, y - 8, edge, False)]
    # Further on (below the row) or back (above it): an arc, the longer the deeper, its
    # ends outside those of shorter arcs, so arcs nest instead of crossing.
    span = abs(j - i)
    below = j > i
    sign = 1 if below else -1
    depth = _depth(span)
    inset = (26 - 14 * min(span - 2, 1)) * (1 if below else -1)
    start = y + sign * _H / 2
    mid = (x0 + x1) / 2
    path = (f"M {x0 + inset:.0f} {start:.0f} Q {mid:.0f} {start + sign * 2 * depth:.0f} "
            f"{x1 - inset:.0f} {start + sign * 2:.0f}")  # fmt: skip
    apex = start + sign * depth
    return [f'<path d="{path}" class="edge"/>',
            *_label(mid, apex + (14 if below else -6), edge, below)]  # fmt: skip


def _depth(span: int) -> int:
    return 26 + 44 * (span - 2)


def _x(index: int) -> float:
    return _LEFT + 60 + _W / 2 + index * _STEP


def to_svg(settings: Settings | None = None) -> str:
    """A small self-made SVG: the states in a row, arrows, self-loops and labels."""
    order = states()
    where = {s: n for n, s in enumerate(order)}
    parts: list[str] = []
    deepest = 0
    for e in edges(settings):
        i, j = where[e.source], where[e.target]
        if j > i + 1:
            deepest = max(deepest, _depth(j - i))
        parts += _edge_svg(i, j, e)
    start = (
        f'<circle cx="{_LEFT}" cy="{_TOP}" r="7" class="start"/>'
        f'<path d="M {_LEFT + 7} {_TOP} L {_x(0) - _W / 2 - 2:.0f} {_TOP}" class="edge"/>'
    )
    nodes = []
    for n, state in enumerate(order):
        x = _x(n) - _W / 2
        final = state in _finals()
        nodes.append(
            f'<rect x="{x:.0f}" y="{_TOP - _H / 2:.0f}" width="{_W}" height="{_H}" '
            f'rx="14" class="{"state final" if final else "state"}"/>'
        )
        nodes.append(_text(_x(n), _TOP + 4, state, "name"))
    width = _x(len(order) - 1) + _W / 2 + 40
    height = _TOP + _H / 2 + deepest + 40
    style = (".state{fill:#f5f5f5;stroke:#444;stroke-width:1.5}"
             ".final{stroke-width:3}.start{fill:#444}"
             ".edge{fill:none;stroke:#444;stroke-width:1.3;marker-end:url(#arrow)}"
             "text{font-family:sans-serif;text-anchor:middle;fill:#222}"
             ".name{font-size:13px;font-weight:bold}"
             # A white halo keeps a label readable where an arc crosses it.
             ".label{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px}")  # fmt: skip
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            'aria-label="The moderator\'s states and transitions">'
            f"<title>roundtable moderator</title><style>{style}</style>"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            'fill="#444"/></marker></defs>')  # fmt: skip
    return "\n".join([head, start, *nodes, *parts, "</svg>"]) + "\n"


_RENDERERS: Mapping[str, Callable[[Settings | None], str]] = {
    "mermaid": to_mermaid, "dot": to_dot, "svg": to_svg,
}  # fmt: skip


def render(fmt: str, settings: Settings | None = None) -> str:
    """The moderator's diagram in `fmt` (mermaid, dot or svg), labels annotated with the
    settings' figures when given."""
    if fmt not in _RENDERERS:
        raise InputError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](settings)


def add_parser(sub: Any, add_table_args: Callable[..., None]) -> None:
    """Add the `graph` subcommand (with the table's settings flags) to the CLI's subparsers."""
    p = sub.add_parser(
        "graph",
        help="draw the moderator's state machine (mermaid, dot or svg)",
        description="Print the moderator's states and transitions, generated from its "
        "transition table. With --table, --config or setting flags, the labels say where "
        "each guard stops holding under those settings.",
    )
    p.add_argument("--format", "-f", default="mermaid", metavar="|".join(FORMATS),
                   help="what to print (default: mermaid)")  # fmt: skip
    # Bare, graph reads no table: unlike the other commands, no current-directory default.
    add_table_args(p, "annotate the labels with this table's settings (default: none, the "
                      "bare diagram; with only --config or setting flags, the current "
                      "directory's)")  # fmt: skip


def main(args: argparse.Namespace, flags: Mapping[str, Any]) -> int:
    """Run `roundtable graph`: print the diagram; mistakes are InputError (exit 2)."""
    settings = None
    if args.table is not None or args.config is not None or flags:
        table = args.table if args.table is not None else Path(".")
        check_directory(table, args.config)
        settings, _ = load_settings(table, args.config, flags=flags)
    print(render(args.format, settings), end="")
    return 0
