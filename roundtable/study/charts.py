"""The report's charts: per condition, every run's value, the mean and its bootstrap CI."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import Estimate

FEW = 5  # below this many runs a bootstrap "CI" is about min..max of the runs: no real CI


@dataclass(frozen=True)
class Panel:
    """One chart: a figure's per-run values per condition, and their estimates."""

    title: str
    groups: Mapping[str, Sequence[float]]  # condition -> one value per run
    estimates: Mapping[str, Estimate]
    scale: tuple[float, float] | None = None  # the item's own range, e.g. Likert 1..5


def y_range(panel: Panel, values: Sequence[float]) -> tuple[float, float, str] | None:
    """The y range when matplotlib's own would mislead, with a note: the item's scale
    (Likert 1..5, not 2.2..2.8), or a value every run has (not a +-0.04 axis around it)."""
    if panel.scale is not None:
        low, high = panel.scale
        pad = (high - low) * 0.06 or 0.5
        return low - pad, high + pad, ""
    low, high = min(values), max(values)
    if low == high:
        pad = max(1.0, abs(low) * 0.1)
        return low - pad, high + pad, f"all runs: {low:g}"
    return None


def _pack(entries: Sequence[str], width: int) -> list[str]:
    """The code key as lines of whole entries (a condition is never split across lines)."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + 2 + len(entry) <= width:
            lines[-1] += "; " + entry
        else:
            lines.append(entry)
    return lines


def plot(
    path: Path, panels: Sequence[Panel], order: Sequence[str], codes: Mapping[str, str]
) -> bool:
    """Draw the panels that have data into path; False (and no file) when none has."""
    drawn = [p for p in panels if any(p.groups.get(c) for c in order)]
    if not drawn:
        path.unlink(missing_ok=True)  # a chart from an earlier build would mislead
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    width = 45 * cols  # characters of small text across the figure
    key = _pack([f"{codes[c]} = {c}" for c in order], width)
    title = textwrap.wrap(
        "grey: each run; blue: mean and 95% bootstrap CI per condition "
        f"(hollow: fewer than {FEW} runs, the CI is about the runs' range, not meaningful)",
        width,
    )
    legend_in = 0.3 + 0.13 * len(key)
    title_in = 0.05 + 0.13 * len(title)
    height = 2.6 * rows + legend_in + title_in
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, height), squeeze=False)
    try:
        _draw(fig, axes, drawn, order, codes, title, key, legend_in / height)
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)  # a failed save (a full disk) must not leak the figure
    return True


def _draw(
    fig: Any,
    axes: Any,
    drawn: Sequence[Panel],
    order: Sequence[str],
    codes: Mapping[str, str],
    title: Sequence[str],
    key: Sequence[str],
    legend_share: float,
) -> None:
    for ax, panel in zip(axes.flat, drawn, strict=False):
        names = [c for c in order if panel.groups.get(c)]
        for x, name in enumerate(names):
            values = list(panel.groups[name])
            spread = [0.0] if len(values) == 1 else [
                -0.15 + 0.3 * i / (len(values) - 1) for i in range(len(values))
            ]  # fmt: skip
            ax.scatter([x + d for d in spread], values, s=9, color="0.6", zorder=2)
            e = panel.estimates[name]
            few = e.n < FEW
            ax.errorbar(
                [x + 0.25],
                [e.mean],
                yerr=[[e.mean - e.low], [e.high - e.mean]],
                fmt="o",
                color="C0",
                mfc="white" if few else "C0",
                capsize=3,
                linestyle="none",
                zorder=3,
            )
        every = [v for n in names for v in panel.groups[n]]
        limits = y_range(panel, every)
        if limits is None:
            ax.margins(y=0.12)  # room for the CI caps
        else:
            ax.set_ylim(limits[0], limits[1])
            if panel.scale and panel.scale[1] - panel.scale[0] <= 10:
                ax.set_yticks(range(int(panel.scale[0]), int(panel.scale[1]) + 1))  # Likert
            if limits[2]:
                ax.text(0.5, 0.9, limits[2], transform=ax.transAxes, ha="center", fontsize=7)
        ax.set_xticks(range(len(names)), [codes[n] for n in names], fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(panel.title, fontsize=9)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.axis("off")
    fig.suptitle("\n".join(title), fontsize=8)
    fig.text(0.01, 0.01, "\n".join(key), fontsize=7, va="bottom", family="monospace")
    fig.tight_layout(rect=(0, legend_share, 1, 1))  # it makes room for the suptitle
