"""Rebuilding a recorded run's state from its records alone, for `--resume`.

The moderator makes its decisions again and must arrive at the recorded ones; the
shared transcript is rebuilt from the recorded texts, token counts and fold events. No
model is asked, no tokenizer is called and nothing is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budget import Budget, Fold
from .errors import InputError
from .moderator import Moderator, Phase, TurnPlan

# What the moderator says before a turn: (event, question, speaker) for prompts.moderator.
Announcement = tuple[str, str | None, str | None]


def announcements(plan: TurnPlan, previous: Phase | None) -> list[Announcement]:
    """The moderator lines that introduce a planned turn."""
    lines: list[Announcement] = []
    if plan.new_topic:
        lines.append(("topic", plan.topic, plan.speaker))  # names who starts
    elif plan.phase is Phase.WRAP_UP and previous is not Phase.WRAP_UP:
        lines.append(("wrap_up", None, None))
    elif plan.phase is Phase.SUMMARY:
        lines.append(("summary", None, plan.speaker))
    if plan.invited and not plan.new_topic and plan.phase is not Phase.WRAP_UP:
        # A quiet participant, by name; in the wrap-up everyone has been asked for
        # closing remarks, and "Let's hear another voice" would contradict it.
        lines.append(("invite", None, plan.speaker))
    return lines


@dataclass
class Replayed:
    """What a replay reached: the phase of the last turn, and the recorded totals."""

    previous: Phase | None
    turns: int
    prompt_tokens: int
    completion_tokens: int
    sources: set[str]


class _Counts:
    """The recorded token counts of a turn's entries, handed out in order."""

    def __init__(self, record: dict[str, Any] | None) -> None:
        counts = (record or {}).get("entry_tokens")
        # Transcripts from before counts were recorded: the entries are counted again.
        self._counts = list(counts) if isinstance(counts, list) else None

    @property
    def recorded(self) -> bool:
        """Whether the turn recorded its entries' counts (a null: the run had not counted
        that entry, so the replay does not either)."""
        return self._counts is not None

    def next(self) -> int | None:
        if self._counts is None:
            return None
        if not self._counts:
            raise ValueError("more entries than recorded counts")
        count = self._counts.pop(0)
        return None if count is None else int(count)

    def finished(self) -> bool:
        return not self._counts


def replay(
    records: Sequence[dict[str, Any]],
    moderator: Moderator,
    budget: Budget,
    opening: Callable[[], list[tuple[str, str, str]]],
    say: Callable[[Announcement], str],
    jsonl: Path,
    before_turn: Callable[[TurnPlan, dict[str, Any]], None] | None = None,
) -> Replayed:
    """Replay `records` (all of a transcript's, in order) into `moderator` and `budget`.

    `opening()` gives the entries before turn 0 (speaker, text, kind); `say` renders a
    moderator line. Fold records count only when their turn was recorded after them (a
    fold of a turn that never finished is done again by the resumed run). `before_turn`
    sees each turn's plan and record where the turn's request was built (its moderator
    lines and folds applied, its reply not yet added): exports rebuild requests there.
    """
    done = Replayed(None, 0, 0, 0, set())
    pending: list[Fold] = []
    number = 0
    for rec in records:
        kind = rec.get("type")
        if kind == "fold":
            pending.append(Fold.from_dict(rec))
        elif kind == "resume":
            pending = []  # folds of a turn the interrupted session never finished
        elif kind == "turn":
            _turn(rec, number, moderator, budget, opening, say, pending, done, jsonl, before_turn)
            pending = []
            number += 1
    return done


def _turn(
    rec: dict[str, Any],
    number: int,
    moderator: Moderator,
    budget: Budget,
    opening: Callable[[], list[tuple[str, str, str]]],
    say: Callable[[Announcement], str],
    folds: list[Fold],
    done: Replayed,
    jsonl: Path,
    before_turn: Callable[[TurnPlan, dict[str, Any]], None] | None,
) -> None:
    # Under speaker_selection llm the selector's recorded answer is handed over again.
    plan = moderator.plan(rec.get("selection") if moderator.wants_selection() else None)
    if plan is None or (plan.index, plan.speaker, plan.phase.value) != (
        rec.get("index"),
        rec.get("speaker"),
        rec.get("phase"),
    ):
        raise InputError(
            f"{jsonl}: turn {number} does not match what the moderator decides; was the "
            "transcript edited? Start a new run instead"
        )
    counts = _Counts(rec)

    def add(speaker: str, text: str, kind: str) -> None:
        # With its recorded count; an entry recorded as not counted stays so.
        budget.entry(speaker, text, kind, counts.next(), later=counts.recorded)

    try:
        if number == 0:
            for speaker, text, kind in opening():
                add(speaker, text, kind)
        for line in announcements(plan, done.previous):
            add("Moderator", say(line), "moderator")
        for fold in folds:
            if fold.before_turn != plan.index:
                raise ValueError("a fold recorded for another turn")
            if fold.window:
                budget.window = fold.window  # the window it made room in (maybe learned)
            budget.shared.apply(fold)
    except (ValueError, KeyError, TypeError):
        raise _mismatch(jsonl, number) from None
    if before_turn is not None:
        before_turn(plan, rec)
    try:
        add(plan.speaker, rec["text"], "turn")
        if not counts.finished():
            raise ValueError("fewer entries than recorded counts")
    except (ValueError, KeyError, TypeError):
        raise _mismatch(jsonl, number) from None
    moderator.record(rec["text"], rec.get("handoff"))
    done.previous = plan.phase
    done.turns += 1
    done.prompt_tokens += int(rec.get("prompt_tokens") or 0)
    done.completion_tokens += int(rec.get("completion_tokens") or 0)
    if not rec.get("human"):
        done.sources.add(str(rec.get("tokens_source", "usage")))


def _mismatch(jsonl: Path, number: int) -> InputError:
    return InputError(
        f"{jsonl}: turn {number}: its recorded entries or folds do not match the run; "
        "was the transcript edited? Start a new run instead"
    )
