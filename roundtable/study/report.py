"""report.md for a study: per condition means with 95% CIs, comparisons, answers, plots."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .charts import FEW, Panel, plot
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
TIMING = ("seconds", "latency_mean_s", "latency_p50_s", "latency_max_s")
TIMING_NOTE = (
    "‡ timing: depends on the load on the server (concurrency, the other runs in flight) "
    "as much as on the condition; runs are queued across conditions to spread it evenly, "
    "but compare these with care."
)
FEW_NOTE = (
    f"† fewer than {FEW} runs: the bootstrap interval is about the range of those runs, "
    "not a meaningful 95% CI."
)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _condition(row: dict[str, str], factors: Sequence[str]) -> str:
    return ", ".join(f"{f}={row.get(f, '')}" for f in factors) or "all runs"


def _num(value: float, sign: str = "") -> str:
    """A number for people: 4550 as `4,550`, not `4.55e+03`; small ones to 3 digits."""
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.3g}" if abs(value) >= 1e-4 or value == 0 else f"{value:{sign}.1e}"


def _fmt(e: Estimate) -> str:
    if e.n == 0:
        return "n/a"
    few = "†" if 1 < e.n < FEW else ""
    return f"{_num(e.mean)} [{_num(e.low)}, {_num(e.high)}] (n={e.n}){few}"


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


def compare_lines(
    name: str,
    groups: dict[str, list[float]],
    order: Sequence[str],
    codes: Mapping[str, str] | None = None,
) -> list[str]:
    """Rows of the comparison table: every condition against the first (by code, if given)."""
    if len(order) < 2:
        return []
    code = codes or {c: c for c in order}
    base = groups.get(order[0], [])
    lines = []
    for other in order[1:]:
        values = groups.get(other, [])
        if not base or not values or len(set(base) | set(values)) == 1:
            continue  # nothing to compare: no runs, or every run the same
        diff = sum(values) / len(values) - sum(base) / len(base)
        p = permutation_p(base, values, seed=SEED)
        lines.append(
            f"| {name} | {code[other]} vs {code[order[0]]} | {_num(diff, '+')} | {_p(p)} | "
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


def _answers_section(
    answers: Sequence[dict[str, str]],
    factors: Sequence[str],
    items: Sequence[dict[str, Any]],
    order: Sequence[str],
    out: Path,
    codes: Mapping[str, str] | None = None,
) -> list[str]:
    code = codes or {c: c for c in order}
    lines = ["## Questionnaire", ""]
    missing = sum(a.get("missing") == "True" for a in answers)
    lines.append(
        f"{len(answers)} answers, {missing} missing (recorded as missing, never "
        "made up). Numeric items: the mean of each run's personas, per run."
    )
    lines.append("")
    panels: list[Panel] = []
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
                shown = [f"{code[c]}: {_fmt(estimates[c])}" for c in order if c in estimates]
                lines.append(f"- **{item['id']}** ({when}): {'; '.join(shown) or 'no answers'}")
                panels.append(Panel(f"{item['id']} ({when})", groups, estimates, _scale(item)))
                comparisons += compare_lines(f"{item['id']} ({when})", groups, order, code)
            if item["when"] == ["before", "after"]:
                shifts += _shift_lines(item["id"], mine, factors, order, code)
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
            "### Before vs. after",
            "",
            "Each persona's after - before, averaged over the run's personas: one value per "
            "run (a run's personas are not independent samples), tested over runs.",
            "",
            "| item | condition | mean shift per run [95% CI] | p (sign flip) |",
            "| --- | --- | --- | --- |",
            *shifts,
        ]
    if plot(out / "questionnaire.png", panels, order, code):
        lines += ["", "![questionnaire](questionnaire.png)"]
    return lines


def _scale(item: Mapping[str, Any]) -> tuple[float, float] | None:
    """The range an item's answers can take, for its chart's axis."""
    if item["kind"] == "likert":
        return 1.0, float(item.get("scale") or 5)
    if item.get("min") is not None and item.get("max") is not None:
        return float(item["min"]), float(item["max"])
    return None


def _shift_lines(
    item: str,
    answers: Sequence[dict[str, str]],
    factors: Sequence[str],
    order: Sequence[str],
    code: Mapping[str, str],
) -> list[str]:
    pairs: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for a in answers:
        value = _number(a.get("answer"))
        if value is not None:
            pairs[(_condition(a, factors), a["run"], a["persona"])][a["when"]] = value
    per_run: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (cond, run, _), p in sorted(pairs.items()):
        if len(p) == 2:
            per_run[(cond, run)].append(p["after"] - p["before"])
    lines = []
    for cond in order:
        diffs = [sum(d) / len(d) for (c, _), d in per_run.items() if c == cond]
        if diffs:
            e = bootstrap_ci(diffs, seed=SEED)
            flip = _p(sign_flip_p(diffs, seed=SEED))
            lines.append(f"| {item} | {code[cond]} | {_fmt(e)} | {flip} |")
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


def _conditions_table(
    every: Sequence[dict[str, str]], factors: Sequence[str], order: Sequence[str]
) -> list[str]:
    """Each condition's code (as the tables and charts name it), its values and its runs."""
    lines = ["| code | condition | runs | completed |", "| --- | --- | --- | --- |"]
    for i, cond in enumerate(order):
        mine = [r for r in every if _condition(r, factors) == cond]
        done = sum(r.get("status") == "completed" for r in mine)
        lines.append(f"| C{i + 1} | {cond} | {len(mine)} | {done} |")
    return lines


def _metrics_section(
    rows: Sequence[dict[str, str]],
    factors: Sequence[str],
    order: Sequence[str],
    code: Mapping[str, str],
    out: Path,
) -> list[str]:
    lines = [
        "## Metrics per condition",
        "",
        "| metric | " + " | ".join(code[c] for c in order) + " |",
        "| --- |" + " --- |" * len(order),
    ]
    panels: list[Panel] = []
    comparisons: list[str] = []
    zero: list[str] = []
    for column in _numeric_columns(rows):
        groups = group(rows, factors, column)
        estimates = {c: bootstrap_ci(v, seed=SEED) for c, v in groups.items()}
        name = f"{column} ‡" if column in TIMING else column
        lines.append(
            f"| {name} | "
            + " | ".join(_fmt(estimates[c]) if c in estimates else "n/a" for c in order)
            + " |"
        )
        if column in PLOTTED:
            if all(v == 0 for values in groups.values() for v in values):
                zero.append(column)  # a chart of zeros says nothing; say it in words
            else:
                panels.append(Panel(name, groups, estimates))
        comparisons += compare_lines(name, groups, order, code)
    lines += ["", FEW_NOTE, TIMING_NOTE]
    if comparisons:
        lines += [
            "",
            "## Differences between conditions",
            "",
            "Each condition against C1; conditions where every run has the same value are "
            "left out.",
            "",
            "| metric | comparison | difference | p (permutation) | Cohen's d | Cliff's delta |",
            "| --- | --- | --- | --- | --- | --- |",
            *comparisons,
        ]
    if plot(out / "metrics.png", panels, order, code):
        lines += ["", "![metrics](metrics.png)"]
    if zero:
        lines += ["", f"Not charted, 0 in every run: {', '.join(zero)}."]
    return lines


def _study_info(out: Path) -> dict[str, Any]:
    info = read_json(out / "study.json", None)
    if not isinstance(info, dict):
        raise InputError(
            f"{out}: not a study directory (no study.json); pass the --out of a `roundtable study`"
        )
    return info


def build(out: Path) -> Path:
    """Write report.md (and its PNGs) from runs.csv and answers.csv."""
    info = _study_info(out)
    factors = list(info.get("factors") or {})
    # Sorted, so the same runs give the same report whatever order they finished in.
    every = sorted(read_csv(out / "runs.csv"), key=lambda r: r.get("id") or "")
    rows = [r for r in every if r.get("status") == "completed"]
    order = _order(info.get("factors") or {}, [_condition(r, factors) for r in every])
    code = {c: f"C{i + 1}" for i, c in enumerate(order)}
    statuses: dict[str, int] = defaultdict(int)
    for r in every:
        statuses[r.get("status") or "?"] += 1
    lines = [
        f"# Study {info.get('name', out.name)}",
        "",
        f"{len(every)} of {info.get('runs', '?')} runs recorded: "
        + (", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none")
        + ". Statistics over completed runs, one value per run; 95% percentile bootstrap "
        "intervals; p-values from two-sided permutation tests against the first condition "
        "(C1).",
        "",
        "## Conditions",
        "",
        *_conditions_table(every, factors, order),
        "",
    ]
    if rows:
        lines += _metrics_section(rows, factors, order, code, out)
    else:
        lines += ["No completed runs: nothing to measure or compare yet."]
        for stale in ("metrics.png", "questionnaire.png"):
            (out / stale).unlink(missing_ok=True)
    items = info.get("questionnaire") or []
    if rows and items and (out / "answers.csv").is_file():
        done = {r["id"] for r in rows}
        answers = sorted(
            (a for a in read_csv(out / "answers.csv") if a.get("run") in done),
            key=lambda a: (a["run"], a.get("persona", ""), a["item"], a.get("when", "")),
        )
        lines += ["", *_answers_section(answers, factors, items, order, out, code)]
    failed = [r for r in every if r.get("status") == "failed"]
    if failed:
        lines += ["", "## Failed runs (run the study again to retry them)", ""]
        lines += [f"- {r['id']}: {r.get('error', '')}" for r in failed]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rebuild(out: Path) -> Path:
    """Rebuild runs.csv and answers.csv from the run directories, then report.md."""
    info = _study_info(out)
    Results(out, list(info.get("factors") or {})).rebuild()
    return build(out)
