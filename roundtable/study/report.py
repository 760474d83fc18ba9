"""report.md for a study: per condition means with 95% CIs, comparisons, answers, plots."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .results import METRIC_COLUMNS, Results, read_csv, read_json
from .stats import (
    Estimate,
    bootstrap_ci,
    choice_test,
    cliffs_delta,
    cohens_d,
    permutation_p,
    sign_flip_p,
)

# The figures plotted (all numeric ones are tabulated).
PLOTTED = (
    "gini",
    "distinct_2",
    "echo_turns",
    "looping_turns",
    "identity_claims",
    "handoffs",
    "pingpong_longest",
    "relevance_mean",
    "on_topic_share",
    "completion_tokens",
    "latency_mean_s",
    "seconds",
)
EXTRA_NUMERIC = ("turns", "prompt_tokens", "completion_tokens", "seconds")
SEED = 0  # the statistics' own seed: the same data give the same report


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _condition(row: dict[str, str], factors: Sequence[str]) -> str:
    return ", ".join(f"{f}={row.get(f, '')}" for f in factors) or "all runs"


def _fmt(e: Estimate) -> str:
    if e.n == 0:
        return "n/a"
    return f"{e.mean:.3g} [{e.low:.3g}, {e.high:.3g}] (n={e.n})"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"


def group(
    rows: Sequence[dict[str, str]],
    factors: Sequence[str],
    column: str,
) -> dict[str, list[float]]:
    """The column's numbers per condition (in the rows' order of conditions)."""
    out: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        value = _number(row.get(column))
        if value is not None:
            out[_condition(row, factors)].append(value)
    return dict(out)


def compare_lines(name: str, groups: dict[str, list[float]], order: Sequence[str]) -> list[str]:
    """Rows of the comparison table: every condition against the first."""
    if len(order) < 2:
        return []
    base = groups.get(order[0], [])
    lines = []
    for other in order[1:]:
        values = groups.get(other, [])
        if not base or not values:
            continue
        diff = sum(values) / len(values) - sum(base) / len(base)
        p = permutation_p(base, values, seed=SEED)
        lines.append(
            f"| {name} | {other} vs {order[0]} | {diff:+.3g} | {_p(p)} | "
            f"{_p(cohens_d(base, values))} | {_p(cliffs_delta(base, values))} |"
        )
    return lines


def choice_lines(
    item: dict[str, Any],
    mine: Sequence[dict[str, str]],
    factors: Sequence[str],
    order: Sequence[str],
) -> list[str]:
    """Rows of the choice table: every condition at once, then (with more than two) each
    against the first; a permutation test of runs on the chi-square, and Cramér's V."""
    options = list(item["options"])
    lines = []
    for when in item["when"]:
        per_run: dict[tuple[str, str], list[float]] = {}
        for a in mine:
            if a["when"] == when and a.get("answer") in options:
                key = (_condition(a, factors), a["run"])
                counts = per_run.setdefault(key, [0.0] * len(options))
                counts[options.index(a["answer"])] += 1
        sets = [("all conditions", list(order))]
        if len(order) > 2:
            sets += [(f"{other} vs {order[0]}", [order[0], other]) for other in order[1:]]
        for label, conds in sets:
            runs = [(conds.index(c), counts) for (c, _), counts in per_run.items() if c in conds]
            if len({i for i, _ in runs}) < 2:
                continue
            test = choice_test([c for _, c in runs], [i for i, _ in runs], seed=SEED)
            lines.append(
                f"| {item['id']} ({when}) | {label} | {test.chi2:.3g} | {_p(test.p)} | "
                f"{_p(test.cramers_v)} | {test.n} in {len(runs)} runs |"
            )
    return lines


def _numeric_columns(rows: Sequence[dict[str, str]]) -> list[str]:
    wanted = [*EXTRA_NUMERIC, *(c for c in METRIC_COLUMNS if c not in EXTRA_NUMERIC)]
    return [
        c
        for c in wanted
        if c in (rows[0] if rows else {}) and any(_number(r.get(c)) is not None for r in rows)
    ]


def _plot(path: Path, panels: list[tuple[str, dict[str, Estimate]]], order: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (title, estimates) in zip(axes.flat, panels, strict=False):
        names = [c for c in order if c in estimates and estimates[c].n]
        means = [estimates[c].mean for c in names]
        errors = [
            [estimates[c].mean - estimates[c].low for c in names],
            [estimates[c].high - estimates[c].mean for c in names],
        ]
        ax.errorbar(range(len(names)), means, yerr=errors, fmt="o", capsize=4)
        ax.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.5, len(names) - 0.5)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("mean and 95% bootstrap CI per condition", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _answers_section(
    answers: Sequence[dict[str, str]],
    factors: Sequence[str],
    items: Sequence[dict[str, Any]],
    order: Sequence[str],
    out: Path,
) -> list[str]:
    lines = ["## Questionnaire", ""]
    missing = sum(a.get("missing") == "True" for a in answers)
    lines.append(
        f"{len(answers)} answers, {missing} missing (recorded as missing, never "
        "made up). Numeric items: the mean of each run's personas, per run."
    )
    lines.append("")
    panels: list[tuple[str, dict[str, Estimate]]] = []
    comparisons: list[str] = []
    choices: list[str] = []
    shifts: list[str] = []
    for item in items:
        mine = [a for a in answers if a["item"] == item["id"]]
        if item["kind"] in ("likert", "number"):
            for when in item["when"]:
                per_run: dict[tuple[str, str], list[float]] = defaultdict(list)
                for a in mine:
                    value = _number(a.get("answer"))
                    if a["when"] == when and value is not None:
                        per_run[(_condition(a, factors), a["run"])].append(value)
                groups: dict[str, list[float]] = defaultdict(list)
                for (cond, _run), values in per_run.items():
                    groups[cond].append(sum(values) / len(values))
                estimates = {c: bootstrap_ci(v, seed=SEED) for c, v in groups.items()}
                lines.append(
                    f"- **{item['id']}** ({when}): "
                    + "; ".join(f"{c}: {_fmt(estimates[c])}" for c in order if c in estimates)
                )
                panels.append((f"{item['id']} ({when})", estimates))
                comparisons += compare_lines(f"{item['id']} ({when})", groups, order)
            if item["when"] == ["before", "after"]:
                shifts += _shift_lines(item["id"], mine, factors, order)
        elif item["kind"] == "choice":
            for cond in order:
                picked = [
                    a["answer"] for a in mine if _condition(a, factors) == cond and a.get("answer")
                ]
                shares = (
                    ", ".join(f"{o}: {picked.count(o) / len(picked):.0%}" for o in item["options"])
                    if picked
                    else "no answers"
                )
                lines.append(f"- **{item['id']}** ({cond}, n={len(picked)}): {shares}")
            choices += choice_lines(item, mine, factors, order)
        else:
            given = sum(bool(a.get("answer")) for a in mine)
            lines.append(f"- **{item['id']}** (text): {given} answers, in answers.csv")
    if comparisons:
        lines += [
            "",
            "| item | comparison | difference | p (permutation) | Cohen's d | Cliff's delta |",
            "| --- | --- | --- | --- | --- | --- |",
            *comparisons,
        ]
    if choices:
        lines += [
            "",
            "Choices between conditions: Pearson's chi-square of the condition x choice table, "
            "its p-value from a permutation test that shuffles whole runs between conditions, "
            "and Cramér's V (0: the conditions choose alike; 1: the condition decides).",
            "",
            "| item | comparison | chi-square | p (permutation) | Cramér's V | answers |",
            "| --- | --- | --- | --- | --- | --- |",
            *choices,
        ]
    if shifts:
        lines += [
            "",
            "### Before vs. after (paired per persona: after - before)",
            "",
            "| item | condition | mean shift [95% CI] | p (sign flip) |",
            "| --- | --- | --- | --- |",
            *shifts,
        ]
    if panels:
        _plot(out / "questionnaire.png", panels, order)
        lines += ["", "![questionnaire](questionnaire.png)"]
    return lines


def _shift_lines(
    item: str, answers: Sequence[dict[str, str]], factors: Sequence[str], order: Sequence[str]
) -> list[str]:
    pairs: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for a in answers:
        value = _number(a.get("answer"))
        if value is not None:
            pairs[(_condition(a, factors), a["run"], a["persona"])][a["when"]] = value
    lines = []
    for cond in order:
        diffs = [
            p["after"] - p["before"] for (c, _, _), p in pairs.items() if c == cond and len(p) == 2
        ]
        if diffs:
            e = bootstrap_ci(diffs, seed=SEED)
            lines.append(f"| {item} | {cond} | {_fmt(e)} | {_p(sign_flip_p(diffs, seed=SEED))} |")
    return lines


def _order(factors: dict[str, list[Any]], seen: Sequence[str]) -> list[str]:
    """The conditions in the experiment file's order (as the CSV writes the values)."""
    names = list(factors)
    planned = [
        ", ".join(f"{n}={v}" for n, v in zip(names, combo, strict=True)) or "all runs"
        for combo in itertools.product(*(factors[n] for n in names))
    ]
    rank = {c: i for i, c in enumerate(planned)}
    return sorted(dict.fromkeys(seen), key=lambda c: rank.get(c, len(rank)))


def build(out: Path) -> Path:
    """Write report.md (and its PNGs) from runs.csv and answers.csv."""
    info = read_json(out / "study.json", None)
    if not isinstance(info, dict):
        raise InputError(
            f"{out}: not a study directory (no study.json); pass the --out of a `roundtable study`"
        )
    factors = list(info.get("factors") or {})
    every = read_csv(out / "runs.csv")
    rows = [r for r in every if r.get("status") == "completed"]
    order = _order(info.get("factors") or {}, [_condition(r, factors) for r in every])
    statuses: dict[str, int] = defaultdict(int)
    for r in every:
        statuses[r.get("status") or "?"] += 1
    lines = [
        f"# Study {info.get('name', out.name)}",
        "",
        f"{len(every)} of {info.get('runs', '?')} runs recorded: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f". Conditions: {', '.join(order) or 'none'}. Statistics over completed runs; "
        "95% percentile bootstrap intervals; p-values from two-sided permutation tests "
        "against the first condition.",
        "",
        "## Metrics per condition",
        "",
        "| metric | " + " | ".join(order) + " |",
        "| --- |" + " --- |" * len(order),
    ]
    panels: list[tuple[str, dict[str, Estimate]]] = []
    comparisons: list[str] = []
    for column in _numeric_columns(rows):
        groups = group(rows, factors, column)
        estimates = {c: bootstrap_ci(v, seed=SEED) for c, v in groups.items()}
        lines.append(
            f"| {column} | "
            + " | ".join(_fmt(estimates[c]) if c in estimates else "n/a" for c in order)
            + " |"
        )
        if column in PLOTTED:
            panels.append((column, estimates))
        comparisons += compare_lines(column, groups, order)
    if comparisons:
        lines += [
            "",
            "## Differences between conditions",
            "",
            "| metric | comparison | difference | p (permutation) | Cohen's d | Cliff's delta |",
            "| --- | --- | --- | --- | --- | --- |",
            *comparisons,
        ]
    if panels and rows:
        _plot(out / "metrics.png", panels, order)
        lines += ["", "![metrics](metrics.png)"]
    items = info.get("questionnaire") or []
    if items and (out / "answers.csv").is_file():
        answers = [
            a for a in read_csv(out / "answers.csv") if any(r["id"] == a["run"] for r in rows)
        ]
        lines += ["", *_answers_section(answers, factors, items, order, out)]
    failed = [r for r in every if r.get("status") == "failed"]
    if failed:
        lines += ["", "## Failed runs (run the study again to retry them)", ""]
        lines += [f"- {r['id']}: {r.get('error', '')}" for r in failed]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rebuild(out: Path) -> Path:
    """Rebuild runs.csv and answers.csv from the run directories, then report.md."""
    info = read_json(out / "study.json", None)
    if not isinstance(info, dict):
        raise InputError(
            f"{out}: not a study directory (no study.json); pass the --out of a `roundtable study`"
        )
    Results(out, list(info.get("factors") or {})).rebuild()
    return build(out)
