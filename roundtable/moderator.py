"""The moderator: a pure, seeded state machine that decides who speaks about what.

It never prints, sleeps or touches the network. Given the same seed and the same
recorded turns it makes the same decisions, which is what makes runs reproducible
and resumable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from random import Random


class Phase(str, Enum):
    """The moderator's states, in the order a discussion passes through them."""

    OPENING = "opening"
    DISCUSSION = "discussion"
    WRAP_UP = "wrap_up"
    SUMMARY = "summary"
    DONE = "done"


# The transition table: after each step, the first guard that holds picks the next
# state. Kept as data so it can be tested and drawn (see README, "The moderator").
TRANSITIONS: dict[Phase, tuple[tuple[str, Phase], ...]] = {
    Phase.OPENING: (
        ("discussion_turns_left", Phase.DISCUSSION),
        ("wrap_up_turns_left", Phase.WRAP_UP),
        ("always", Phase.SUMMARY),
    ),
    Phase.DISCUSSION: (
        ("discussion_turns_left", Phase.DISCUSSION),
        ("wrap_up_turns_left", Phase.WRAP_UP),
        ("always", Phase.SUMMARY),
    ),
    Phase.WRAP_UP: (("wrap_up_turns_left", Phase.WRAP_UP), ("always", Phase.SUMMARY)),
    Phase.SUMMARY: (("always", Phase.DONE),),
    Phase.DONE: (),
}


@dataclass(frozen=True)
class TurnPlan:
    """The moderator's decision for one model turn."""

    index: int
    speaker: str
    phase: Phase
    topic: str | None
    topic_index: int | None
    new_topic: bool
    ask: str | None  # a participant the speaker is nudged to ask for an opinion
    turns_left: int  # persona turns before the summary, this one included


def topic_length_bounds(turns_per_topic: int) -> tuple[int, int]:
    """Topic lengths are drawn uniformly from these bounds, whose mean is turns_per_topic."""
    low = max(1, turns_per_topic - turns_per_topic // 2)
    return low, 2 * turns_per_topic - low


def mention_pattern(names: Sequence[str]) -> re.Pattern[str]:
    """A regex matching any of the names as a whole word (names are literal text)."""
    alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


class Moderator:
    """Decides speaker, topic, nudges and phase, one turn at a time."""

    def __init__(
        self,
        names: Sequence[str],
        questions: Sequence[str],
        *,
        turns: int,
        wrap_up_turns: int,
        turns_per_topic: int,
        ask_opinion_every: int,
        rng: Random,
        aliases: Sequence[Sequence[str]] | None = None,
    ) -> None:
        if not names or not questions:
            raise ValueError("a moderator needs at least one participant and one question")
        if not 0 <= wrap_up_turns <= turns:
            raise ValueError("wrap_up_turns must be from 0 to turns")
        self.names = tuple(names)
        self.questions = tuple(questions)
        self.turns = turns
        self.wrap_up_turns = wrap_up_turns
        self.turns_per_topic = turns_per_topic
        self.ask_opinion_every = ask_opinion_every
        self._rng = rng
        self.phase = Phase.OPENING
        self.turns_done = 0  # persona turns (discussion + wrap-up) recorded
        self.counts = dict.fromkeys(self.names, 0)
        self.last_speaker: str | None = None
        self._next_by_mention: str | None = None
        self._topic_index: int | None = None
        self._topic_turns_left = 0
        self._pending: TurnPlan | None = None
        self.topic_lengths: list[int] = []  # turns actually spent on each topic so far
        # Each participant is recognised by its name and any aliases (e.g. full name).
        alias_lists = aliases or [[] for _ in self.names]
        self._lookup: dict[str, str] = {}
        for name, extra in zip(self.names, alias_lists, strict=False):
            for alias in (name, *extra):
                self._lookup.setdefault(alias, name)
        self._mentions = mention_pattern(list(self._lookup))

    # -- the transition table ---------------------------------------------------------
    def _guard(self, name: str) -> bool:
        discussion_turns = self.turns - self.wrap_up_turns
        if name == "discussion_turns_left":
            return self.turns_done < discussion_turns
        if name == "wrap_up_turns_left":
            return self.turns_done < self.turns
        if name == "always":
            return True
        raise ValueError(f"unknown guard {name!r}")

    def _advance(self) -> None:
        for guard, target in TRANSITIONS[self.phase]:
            if self._guard(guard):
                self.phase = target
                return

    def start(self) -> None:
        """Leave the opening (introductions happen outside, from the persona files)."""
        if self.phase is Phase.OPENING:
            self._advance()

    @property
    def done(self) -> bool:
        """True once the summary has been recorded."""
        return self.phase is Phase.DONE

    # -- decisions --------------------------------------------------------------------
    def _weighted_pick(self, candidates: list[str]) -> str:
        # Favour those who have spoken least, so nobody is starved for long.
        weights = [1.0 / (1 + self.counts[c]) ** 2 for c in candidates]
        return self._rng.choices(candidates, weights=weights)[0]

    def _pick_speaker(self) -> str:
        if self._next_by_mention is not None:
            return self._next_by_mention
        others = [n for n in self.names if n != self.last_speaker] or list(self.names)
        if self.last_speaker is None:
            return self._rng.choice(others)
        return self._weighted_pick(others)

    def _next_topic(self) -> bool:
        """Move to the next topic if the current one has used its turns."""
        if self._topic_index is not None and self._topic_turns_left > 0:
            return False
        if self._topic_index is None:
            self._topic_index = 0
        elif self._topic_index + 1 < len(self.questions):
            self._topic_index += 1
        else:
            # Out of questions: the last one continues for the rest of the discussion.
            self._topic_turns_left = self.turns
            return False
        self._topic_turns_left = self._rng.randint(*topic_length_bounds(self.turns_per_topic))
        self.topic_lengths.append(0)
        return True

    def plan(self) -> TurnPlan | None:
        """The next turn to take (the same plan until it is recorded), or None when done."""
        if self.phase is Phase.OPENING:
            self.start()
        if self._pending is not None:
            return self._pending
        if self.phase is Phase.DONE:
            return None
        if self.phase is Phase.SUMMARY:
            most = max(self.counts.values())
            speaker = next(n for n in self.names if self.counts[n] == most)
            plan = TurnPlan(self.turns_done, speaker, Phase.SUMMARY, None, None, False, None, 0)
        else:
            new_topic = False
            topic: str | None = None
            topic_index: int | None = None
            if self.phase is Phase.DISCUSSION:
                new_topic = self._next_topic()
                topic_index = self._topic_index
                topic = self.questions[topic_index] if topic_index is not None else None
            speaker = self._pick_speaker()
            ask = None
            if (
                self.phase is Phase.DISCUSSION
                and self.ask_opinion_every > 0
                and len(self.names) > 1
                and self._rng.random() < 1.0 / self.ask_opinion_every
            ):
                ask = self._weighted_pick([n for n in self.names if n != speaker])
            left = self.turns - self.turns_done
            plan = TurnPlan(
                self.turns_done, speaker, self.phase, topic, topic_index, new_topic, ask, left
            )
        self._pending = plan
        return plan

    def mentioned(self, text: str, speaker: str) -> str | None:
        """The participant (not the speaker) whose name is mentioned last in text."""
        last: str | None = None
        for match in self._mentions.finditer(text):
            name = self._lookup[match.group(0)]
            if name != speaker:
                last = name
        return last

    def record(self, text: str) -> None:
        """Record what the planned speaker said, and move the state machine on."""
        plan = self.plan()
        if plan is None:
            raise RuntimeError("the discussion is over; nothing to record")
        self._pending = None
        if plan.phase is not Phase.SUMMARY:
            self.turns_done += 1
            self.counts[plan.speaker] += 1
            if plan.phase is Phase.DISCUSSION and self.topic_lengths:
                self._topic_turns_left -= 1
                self.topic_lengths[-1] += 1
        self.last_speaker = plan.speaker
        self._next_by_mention = self.mentioned(text, plan.speaker)
        self._advance()
