"""Measuring finished runs: `roundtable metrics RUN_DIR...` and compute(run_dir)."""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import textstats as ts
from .errors import InputError
from .sanitize import sanitize
from .transcript import read_records

ECHO_N = 5  # word n-grams compared for echo
ECHO_SHARE = 0.5  # a turn is echo when more than this share of its n-grams were said before
LEAK_N = 6  # word n-grams compared with the prompts for instruction leak
PINGPONG_MIN = 4  # a ping-pong streak counts from this many turns
# Template variables whose value is known for a speaker; other `{{ x }}` become breaks.
_TASK_KEYS = ("context", "discuss_instructions", "summarize_instructions")


@dataclass(frozen=True)
class RunMetrics:
    """The figures of one run (see compute_records for the keys)."""

    path: Path
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The figures with the run's path first, as `--json` prints them."""
        return {"run": str(self.path), **self.figures}


def load(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A run directory (or its transcript.jsonl) and its records; InputError if not a run."""
    if path.is_dir():
        jsonl = path / "transcript.jsonl"
        if not jsonl.is_file():
            raise InputError(
                f"{path}: not a roundtable run (no transcript.jsonl); pass a run directory "
                "such as outputs/<timestamp>"
            )
    elif path.is_file():
        jsonl = path
    else:
        raise InputError(f"{path}: run directory not found; pass a directory under outputs/")
    try:
        records = read_records(jsonl)
    except (UnicodeDecodeError, OSError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        raise InputError(f"{jsonl}: cannot be read ({reason}); pass a run directory") from None
    if not records or not isinstance(records[0], dict) or records[0].get("type") != "run":
        raise InputError(
            f"{jsonl}: not a roundtable transcript (its first line is not a run record)"
        )
    for number, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise InputError(f"{jsonl}: line {number} is not a JSON object")
        if rec.get("type") == "turn" and not (
            isinstance(rec.get("speaker"), str) and isinstance(rec.get("text"), str)
        ):
            raise InputError(f"{jsonl}: line {number}: a turn needs a speaker and a text")
    return (path if path.is_dir() else path.parent), records


def compute(run_dir: Path | str) -> RunMetrics:
    """The figures of the run in run_dir (or a transcript.jsonl path)."""
    directory, records = load(Path(run_dir))
    return RunMetrics(directory, compute_records(records))


def _number(value: Any, default: float = 0.0) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else default


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def gini(values: Sequence[float]) -> float:
    """Gini coefficient: sum over all ordered pairs |x_i - x_j| / (2 n^2 mean); 0 if all 0."""
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return 0.0
    pairs = sum(abs(a - b) for a in values for b in values)
    return round(pairs / (2 * n * total), 4)


def pingpong(speakers: Sequence[str]) -> list[int]:
    """Lengths of the maximal ping-pong streaks (A B A B ...; 2 different speakers)."""
    streaks: list[int] = []
    start = 0
    for k in range(1, len(speakers) + 1):
        alternating = k < len(speakers) and speakers[k] != speakers[k - 1]
        if alternating and (k - start < 2 or speakers[k] == speakers[k - 2]):
            continue
        if k - start >= 2:
            streaks.append(k - start)
        # A new streak starts with the last turn (a pair) unless the speaker repeated.
        start = k - 1 if alternating else k
    return streaks


def _participants(run: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each participant's name forms, in file order; speakers the run line lacks are added."""
    forms: dict[str, list[str]] = {}
    for p in run.get("participants") or []:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            forms[p["name"]] = ts.name_forms(p["name"], str(p.get("full_name") or p["name"]))
    for t in turns:
        forms.setdefault(t["speaker"], ts.name_forms(t["speaker"], t["speaker"]))
    return forms


def _introductions(run: dict[str, Any]) -> list[str]:
    if not (run.get("settings") or {}).get("introductions", True):
        return []
    return [
        str(p.get("introduction") or f"I'm {p.get('full_name')}.")
        for p in run.get("participants") or []
        if isinstance(p, dict)
    ]


@functools.lru_cache(maxsize=256)
def _grams(texts: tuple[str, ...], n: int) -> frozenset[tuple[str, ...]]:
    """The n-grams of prompt texts, made once per process: every run of a study, and the
    guards and the metrics of each, ask for the same few."""
    return frozenset(ts.segment_ngrams(texts, n))


@functools.lru_cache(maxsize=256)
def _stripped(source: str, values: tuple[tuple[str, str], ...]) -> str:
    """A template's text for a speaker, made once per process (every run of a study sends
    each speaker the same templates)."""
    return ts.strip_jinja(source, dict(values))


def leak_sources(
    run: dict[str, Any], n: int = LEAK_N
) -> Callable[[str], frozenset[tuple[str, ...]]]:
    """For a speaker: the n-grams of the prompts sent to them (persona, task, templates)."""
    task = run.get("task") or {}
    texts = [str(task[k]) for k in _TASK_KEYS if isinstance(task.get(k), str)]
    templates = [s for s in (run.get("prompts") or {}).values() if isinstance(s, str)]
    people = {p.get("name"): p for p in run.get("participants") or [] if isinstance(p, dict)}
    cache: dict[str, frozenset[tuple[str, ...]]] = {}

    def sources(speaker: str) -> frozenset[tuple[str, ...]]:
        if speaker in cache:
            return cache[speaker]
        p = people.get(speaker, {})
        values = {f"task.{k}": str(task[k]) for k in _TASK_KEYS if k in task}
        values["persona.name"] = speaker
        values["persona.full_name"] = str(p.get("full_name") or speaker)
        values["persona.prompt"] = str(p.get("prompt") or "")
        own = [values["persona.prompt"], *texts]
        known = tuple(values.items())
        own += [_stripped(source, known) for source in templates]
        cache[speaker] = _grams(tuple(own), n)
        return cache[speaker]

    return sources


def _relevance(discussion: list[dict[str, Any]], questions: list[str]) -> tuple[Any, Any]:
    """Mean (own overlap - mean other overlap) and the share of turns nearest their own."""
    words = {q: ts.content_words(q) for q in questions}
    scores, nearest = [], 0
    for t in discussion:
        topic = t.get("topic")
        if not isinstance(topic, str):
            continue
        said = ts.content_words(t["text"])
        own_words = words.get(topic) or ts.content_words(topic)
        own = len(said & own_words) / len(own_words) if own_words else 0.0
        others = [len(said & w) / len(w) if w else 0.0 for q, w in words.items() if q != topic]
        scores.append(own - (sum(others) / len(others) if others else 0.0))
        nearest += own > max(others, default=0.0)
    if not scores:
        return None, None
    return round(sum(scores) / len(scores), 4), _ratio(nearest, len(scores))


def _guard_reasons(turn: dict[str, Any]) -> list[str]:
    reasons = []
    for item in turn.get("guards") or []:
        if isinstance(item, dict):
            item = item.get("reason") or item.get("guard") or item.get("kind") or "other"
        reasons.append(str(item))
    return reasons


def compute_records(
    records: Sequence[dict[str, Any]],
    *,
    echo_n: int = ECHO_N,
    echo_share: float = ECHO_SHARE,
    leak_n: int = LEAK_N,
) -> dict[str, Any]:
    """The figures of a run from its transcript records (definitions: README, "metrics")."""
    run = next((r for r in records if r.get("type") == "run"), {})
    model_turns = [r for r in records if r.get("type") == "turn"]
    turns = [t for t in model_turns if t.get("phase") != "summary"]
    discussion = [t for t in turns if t.get("phase", "discussion") == "discussion"]
    forms = _participants(run, turns)
    questions = [q for q in run.get("questions") or [] if isinstance(q, str)]

    counts = Counter(t["speaker"] for t in discussion)
    shares = {name: _ratio(counts[name], len(discussion)) for name in forms}
    tokens = [ts.words(t["text"]) for t in turns]
    unigrams = [w for tok in tokens for w in tok]
    bigrams = [g for tok in tokens for g in ts.ngrams(tok, 2)]

    said = ts.segment_ngrams(_introductions(run), echo_n)
    prompt_grams = leak_sources(run, leak_n)
    echo = looping = leak = identity = other_id = ai_id = handoffs = 0
    for i, (t, tok) in enumerate(zip(turns, tokens, strict=True)):
        grams = ts.ngrams(tok, echo_n)
        echo += ts.known_share(grams, said) > echo_share
        said.update(grams)
        looping += ts.looping(t["text"])
        leak += ts.copied_share(tok, prompt_grams(t["speaker"]), leak_n) > 0
        others = ts.other_forms(forms, t["speaker"])
        claims_other, claims_ai = (
            ts.claims_identity(t["text"], others, forms.get(t["speaker"], ())),
            ts.claims_ai(t["text"]),
        )
        identity += claims_other or claims_ai
        other_id += claims_other
        ai_id += claims_ai
        nxt = turns[i + 1]["speaker"] if i + 1 < len(turns) else None
        handoffs += nxt not in (None, t["speaker"]) and ts.named(t["text"], forms[nxt])
    streaks = pingpong([t["speaker"] for t in turns])
    relevance, on_topic = _relevance(discussion, questions)
    topics = {t.get("topic") for t in discussion}

    # A person's turns (human: true) took no request: their typing time is not latency.
    asked = [t for t in model_turns if not t.get("human")]
    latencies = [_number(t.get("latency_s")) for t in asked if "latency_s" in t]
    attempts = [max(1, int(_number(t.get("attempts"), 1))) for t in asked]
    prompt = sum(int(_number(t.get("prompt_tokens"))) for t in model_turns)
    completion = sum(int(_number(t.get("completion_tokens"))) for t in model_turns)
    ends = [r for r in records if r.get("type") == "end"]
    return {
        "status": ends[-1].get("status") if ends else None,
        "seed": (run.get("settings") or {}).get("seed"),
        "turns": len(turns),
        "discussion_turns": len(discussion),
        "summary_turns": len(model_turns) - len(turns),
        "shares": shares,
        "gini": gini([counts[name] for name in forms]),  # exact counts, not rounded shares
        "distinct_1": _ratio(len(set(unigrams)), len(unigrams)),
        "distinct_2": _ratio(len(set(bigrams)), len(bigrams)),
        "looping_turns": looping,
        "echo_turns": echo,
        "leak_turns": leak,
        "identity_claims": identity,
        "identity_other": other_id,
        "identity_ai": ai_id,
        "handoffs": handoffs,
        "pingpong_longest": max(streaks, default=min(len(turns), 1)),
        "pingpong_streaks": sum(s >= PINGPONG_MIN for s in streaks),
        "relevance_mean": relevance,
        "on_topic_share": on_topic,
        "questions_reached": len(topics & set(questions)) if questions else len(topics - {None}),
        "questions": len(questions),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "latency_mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
        "latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "latency_max_s": round(max(latencies), 4) if latencies else None,
        "attempts": sum(attempts),
        "retries": sum(attempts) - len(attempts),
        "guards": dict(sorted(Counter(r for t in model_turns for r in _guard_reasons(t)).items())),
        "folds": sum(r.get("type") == "fold" for r in records),
    }


# -- the command ----------------------------------------------------------------------
def _pct(value: Any, whole: Any) -> str:
    return f"{value} ({100 * value / whole:.0f}%)" if whole else str(value)


# Table rows: label and how to show a run's figures (f).
_ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("status", lambda f: f["status"]),
    ("seed", lambda f: f["seed"]),
    ("turns (+ summary)", lambda f: f"{f['turns']} (+{f['summary_turns']})"),
    ("discussion turns", lambda f: f["discussion_turns"]),
    ("gini of shares", lambda f: f"{f['gini']:.3f}"),
    ("distinct-1", lambda f: f"{f['distinct_1']:.3f}"),
    ("distinct-2", lambda f: f"{f['distinct_2']:.3f}"),
    ("looping turns", lambda f: _pct(f["looping_turns"], f["turns"])),
    ("echo turns", lambda f: _pct(f["echo_turns"], f["turns"])),
    ("instruction leak turns", lambda f: _pct(f["leak_turns"], f["turns"])),
    ("identity claims", lambda f: _pct(f["identity_claims"], f["turns"])),
    ("  as another participant", lambda f: f["identity_other"]),
    ("  as an AI", lambda f: f["identity_ai"]),
    ("mention handoffs", lambda f: _pct(f["handoffs"], max(f["turns"] - 1, 0))),
    ("longest ping-pong", lambda f: f["pingpong_longest"]),
    (f"ping-pong streaks >= {PINGPONG_MIN}", lambda f: f["pingpong_streaks"]),
    ("topic relevance (mean)", lambda f: f["relevance_mean"]),
    ("on-topic share", lambda f: f["on_topic_share"]),
    ("questions reached", lambda f: f"{f['questions_reached']}/{f['questions']}"),
    ("prompt tokens", lambda f: f["prompt_tokens"]),
    ("completion tokens", lambda f: f["completion_tokens"]),
    ("total tokens", lambda f: f["total_tokens"]),
    ("latency mean s", lambda f: f["latency_mean_s"]),
    ("latency p50 s", lambda f: f["latency_p50_s"]),
    ("latency max s", lambda f: f["latency_max_s"]),
    ("requests (retries)", lambda f: f"{f['attempts']} ({f['retries']})"),
    ("folds", lambda f: f["folds"]),
)


def _cell(value: Any) -> str:
    return "-" if value is None else sanitize(str(value)).replace("\n", " ")


def format_table(results: Sequence[RunMetrics]) -> str:
    """An aligned table: one row per figure, one column per run."""
    figures = [r.figures for r in results]
    rows = [["", *(r.path.name or str(r.path) for r in results)]]
    rows += [[label, *(show(f) for f in figures)] for label, show in _ROWS[:4]]
    names = list(dict.fromkeys(n for f in figures for n in f["shares"]))
    rows += [[f"share {n}", *(f["shares"].get(n) for f in figures)] for n in names]
    rows += [[label, *(show(f) for f in figures)] for label, show in _ROWS[4:]]
    reasons = sorted({g for f in figures for g in f["guards"]})
    rows += [[f"guards: {g}", *(f["guards"].get(g, 0) for f in figures)] for g in reasons]
    if not reasons:
        rows.append(["guards", *("none" for _ in figures)])
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0])] + [v.rjust(widths[i]) for i, v in enumerate(row) if i])
        for row in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def add_metrics_parser(sub: Any) -> None:
    """Add the `metrics` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "metrics",
        help="measure finished runs (shares, echo, leaks, identity, tokens, ...)",
        description="Measure finished runs: one column per run, or --json. Definitions: "
        'README, "Measuring a discussion".',
    )
    p.add_argument(
        "runs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run directories (or their transcript.jsonl files)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON (a list)")


def main(args: argparse.Namespace) -> int:
    """Run `roundtable metrics`; errors are InputError (one line, exit 2)."""
    results = [compute(path) for path in args.runs]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_table(results))
    return 0
