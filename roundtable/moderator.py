"""The moderator: a pure, seeded state machine that decides who speaks about what.

It never prints, sleeps or touches the network. Given the same seed and the same
recorded turns it makes the same decisions, which is what makes runs reproducible
and resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from random import Random
from typing import Protocol

from .speakers import POLICIES, Addressing, Facts, candidates, choose


class Phase(str, Enum):
    """The moderator's states, in the order a discussion passes through them."""

    OPENING = "opening"
    DISCUSSION = "discussion"
    WRAP_UP = "wrap_up"
    SUMMARY = "summary"
    DONE = "done"


class _Counts(Protocol):
    """What the guards read: how far the discussion has come."""

    turns: int
    wrap_up_turns: int
    turns_done: int


def discussion_turns_left(m: _Counts) -> bool:
    """Discussion turns remain before the wrap-up."""
    return m.turns_done < m.turns - m.wrap_up_turns


def wrap_up_turns_left(m: _Counts) -> bool:
    """Persona turns remain before the summary."""
    return m.turns_done < m.turns


def always(m: _Counts) -> bool:
    """The fallback row."""
    return True


Guard = Callable[[_Counts], bool]

# The transition table: after each step, the first guard that holds picks the next
# state. Kept as data so it can be tested and drawn (see README, "The moderator"); the
# guards are functions, so a typo fails when the module loads, not when a row is reached.
TRANSITIONS: dict[Phase, tuple[tuple[Guard, Phase], ...]] = {
    Phase.OPENING: (
        (discussion_turns_left, Phase.DISCUSSION),
        (wrap_up_turns_left, Phase.WRAP_UP),
        (always, Phase.SUMMARY),
    ),
    Phase.DISCUSSION: (
        (discussion_turns_left, Phase.DISCUSSION),
        (wrap_up_turns_left, Phase.WRAP_UP),
        (always, Phase.SUMMARY),
    ),
    Phase.WRAP_UP: ((wrap_up_turns_left, Phase.WRAP_UP), (always, Phase.SUMMARY)),
    Phase.SUMMARY: ((always, Phase.DONE),),
    Phase.DONE: (),
}


def check_transitions(table: Mapping[Phase, Sequence[tuple[Guard, Phase]]]) -> None:
    """Reject a malformed table: every state listed, callable guards, an `always` row last."""
    missing = set(Phase) - set(table)
    if missing:
        raise ValueError(f"transition table: no row for {sorted(p.value for p in missing)}")
    for phase, rows in table.items():
        for guard, target in rows:
            if not callable(guard) or not isinstance(target, Phase):
                raise ValueError(f"transition table: bad row in {phase.value}: {guard!r}")
        if rows and rows[-1][0] is not always:
            raise ValueError(f"transition table: {phase.value} must end with an always row")


check_transitions(TRANSITIONS)


@dataclass(frozen=True, kw_only=True)
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
    reason: str = ""  # how the speaker was chosen (see speakers.py): addressed, invited, ...

    @property
    def invited(self) -> bool:
        """True when the moderator gives the floor to a quiet participant by name."""
        return self.reason == "invited"


def topic_length_bounds(turns_per_topic: int) -> tuple[int, int]:
    """Topic lengths are drawn uniformly from these bounds, whose mean is turns_per_topic."""
    low = max(1, turns_per_topic - turns_per_topic // 2)
    return low, 2 * turns_per_topic - low


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
        policy: str = "natural",
        max_pair_handoffs: int = 3,
        talkativeness: Sequence[float] | None = None,
        silence_turns: int | None = None,
        humans: Sequence[str] = (),
        human_may_summarise: bool = False,
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
        if policy not in POLICIES:
            raise ValueError(f"unknown speaker policy {policy!r}")
        self.policy = policy
        self.max_pair_handoffs = max_pair_handoffs
        self.talkativeness = dict(zip(self.names, talkativeness or [], strict=False))
        self.humans = frozenset(humans)  # people at the terminal: the floor, not the summary
        self.human_may_summarise = human_may_summarise
        # Someone silent for two rounds is invited by name.
        self.silence_turns = 2 * (len(self.names) - 1) if silence_turns is None else silence_turns
        self.counts = dict.fromkeys(self.names, 0)
        self.history: list[str] = []  # speakers of persona turns, in order
        self.last_speaker: str | None = None
        self._addressed: str | None = None
        self._topic_index: int | None = None
        self._topic_turns_left = 0
        self._pending: TurnPlan | None = None
        self.topic_lengths: list[int] = []  # turns actually spent on each topic so far
        # Each participant is recognised by its name and any aliases (e.g. full name).
        self.addressing = Addressing.build(self.names, aliases)

    # -- the transition table ---------------------------------------------------------
    def _advance(self) -> None:
        for guard, target in TRANSITIONS[self.phase]:
            if guard(self):
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
    def facts(self) -> Facts:
        """What the speaker policies look at, as of now."""
        return Facts(
            names=self.names,
            counts=dict(self.counts),
            history=tuple(self.history),
            addressed=self._addressed,
            talkativeness=self.talkativeness,
            max_pair_handoffs=self.max_pair_handoffs,
            silence_turns=self.silence_turns,
        )

    def wants_selection(self) -> bool:
        """True when the next plan needs a selector's answer (the `llm` policy)."""
        return (
            self.policy == "llm"
            and self._pending is None
            and self.phase in (Phase.DISCUSSION, Phase.WRAP_UP)
            and self.history != []
        )

    def candidates(self) -> list[str]:
        """Who may speak next (for a selector to choose from)."""
        return candidates(self.facts())

    def _weighted_pick(self, candidates: list[str]) -> str:
        # Favour those who have spoken least, so nobody is starved for long.
        weights = [1.0 / (1 + self.counts[c]) ** 2 for c in candidates]
        return self._rng.choices(candidates, weights=weights)[0]

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

    def plan(self, selected: str | None = None) -> TurnPlan | None:
        """The next turn to take (the same plan until it is recorded), or None when done.

        `selected` is a selector's answer under the `llm` policy (an input, recorded by
        the caller so a replay passes the same one)."""
        if self.phase is Phase.OPENING:
            self.start()
        if self._pending is not None:
            return self._pending
        if self.phase is Phase.DONE:
            return None
        if self.phase is Phase.SUMMARY:
            speaker = self._summariser()
            plan = TurnPlan(
                index=self.turns_done,
                speaker=speaker,
                phase=Phase.SUMMARY,
                topic=None,
                topic_index=None,
                new_topic=False,
                ask=None,
                turns_left=0,
                reason="summary",
            )
        else:
            new_topic = False
            topic: str | None = None
            topic_index: int | None = None
            if self.phase is Phase.DISCUSSION:
                new_topic = self._next_topic()
                topic_index = self._topic_index
                topic = self.questions[topic_index] if topic_index is not None else None
            choice = choose(self.policy, self.facts(), self._rng, selected)
            speaker, reason = choice.speaker, choice.reason
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
                index=self.turns_done,
                speaker=speaker,
                phase=self.phase,
                topic=topic,
                topic_index=topic_index,
                new_topic=new_topic,
                ask=ask,
                turns_left=left,
                reason=reason,
            )
        self._pending = plan
        return plan

    def _summariser(self) -> str:
        """Who spoke most; a human only when the setting allows it and they alone did,
        else the model participant who spoke most (first in file order on a tie)."""
        most = max(self.counts.values())
        top = [n for n in self.names if self.counts[n] == most]
        if self.human_may_summarise and len(top) == 1:
            return top[0]
        models = [n for n in self.names if n not in self.humans] or list(self.names)
        most = max(self.counts[n] for n in models)
        return next(n for n in models if self.counts[n] == most)

    def mentioned(self, text: str, speaker: str) -> str | None:
        """The participant (not the speaker) named last in text, addressed or not."""
        return self.addressing.mentioned(text, speaker)

    def record(self, text: str, handoff: str | None = None) -> None:
        """Record what the planned speaker said, and move the state machine on; `handoff`
        is a participant the speaker handed the floor to explicitly (a human's /ask),
        taken as addressed whatever the text says."""
        plan = self.plan()
        if plan is None:
            raise RuntimeError("the discussion is over; nothing to record")
        self._pending = None
        if plan.phase is not Phase.SUMMARY:
            self.turns_done += 1
            self.counts[plan.speaker] += 1
            self.history.append(plan.speaker)
            if plan.phase is Phase.DISCUSSION and self.topic_lengths:
                self._topic_turns_left -= 1
                self.topic_lengths[-1] += 1
        self.last_speaker = plan.speaker
        if handoff in self.names and handoff != plan.speaker:
            self._addressed = handoff
        else:
            self._addressed = self.addressing.addressed(text, plan.speaker)
        self._advance()
