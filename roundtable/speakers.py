"""Who speaks next: addressing rules and speaker policies, as pure functions of facts.

Nothing here keeps state or does I/O. The moderator gathers the facts (who spoke, how
often, who was addressed) and a seeded `random.Random`; these functions decide.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from random import Random

POLICIES = ("natural", "round_robin", "random", "llm")

# Words that hand the floor to the name after them ("ask Ben", "over to Ben").
_HANDOFF_VERBS = (
    r"ask|asks|asking|invite|invites|over to|turn to|hear from|hand it over to|hand over to|"
    r"pass it to|pass to|let's hear|question for|back to"
)
_CJK_HANDOFF = r"请|问问|问"
_SENTENCE_START = r"(?:^|[.!?。！？]\s*|\n\s*)(?:(?i:so|and|well|now|okay|ok|but|then)[,，]?\s+)?"
_VOCATIVE_AFTER = r"\s*[,，、:：!！?？]"
_SENTENCE_END = r"\s*(?:[.!?。！？…]|$)"


def _is_spaceless(name: str) -> bool:
    """True for names in scripts written without spaces (Chinese, Japanese, Thai...)."""
    return any(
        unicodedata.east_asian_width(ch) in "WF" or "\u0e00" <= ch <= "\u0e7f" for ch in name
    )


def _name_group(names: Sequence[str]) -> str:
    """One named group matching any name: whole words, or anywhere for spaceless scripts."""
    ordered = sorted(set(n for n in names if n), key=len, reverse=True)
    spaced = [re.escape(n) for n in ordered if not _is_spaceless(n)]
    spaceless = [re.escape(n) for n in ordered if _is_spaceless(n)]
    parts = []
    if spaced:
        parts.append(rf"(?<!\w)(?:{'|'.join(spaced)})(?!\w)")
    if spaceless:
        parts.append(rf"(?:{'|'.join(spaceless)})")
    return rf"(?P<n>{'|'.join(parts)})"


@dataclass(frozen=True)
class Addressing:
    """Finds who a turn hands the floor to (addressed, not merely mentioned)."""

    patterns: tuple[re.Pattern[str], ...]
    mention: re.Pattern[str]
    lookup: Mapping[str, str]

    @classmethod
    def build(
        cls, names: Sequence[str], aliases: Sequence[Sequence[str]] | None = None
    ) -> Addressing:
        """Patterns for these participants (each known by its name and aliases)."""
        lookup: dict[str, str] = {}
        for name, extra in zip(names, aliases or [[] for _ in names], strict=False):
            for alias in (name, *extra):
                lookup.setdefault(alias, name)
        n = _name_group(list(lookup))
        patterns = (
            # "Ben, what do you think?"  "So, Ben: ..."
            re.compile(rf"{_SENTENCE_START}{n}{_VOCATIVE_AFTER}"),
            # "What do you think, Ben?"  "Thanks, Ben."
            re.compile(rf"[,，、]\s*{n}{_SENTENCE_END}"),
            # "Do you agree Ben?"
            re.compile(rf"(?:^|\s){n}\s*[?？]"),
            # "I'd like to ask Ben ..."  "Over to Ben."  "@Ben"
            re.compile(rf"(?:(?<!\w)(?i:{_HANDOFF_VERBS})\s+|@){n}"),
            # Chinese and Japanese: 请王芳 / 问问王芳
            re.compile(rf"(?:{_CJK_HANDOFF}){n}"),
        )
        return cls(patterns, re.compile(n), lookup)

    def addressed(self, text: str, speaker: str) -> str | None:
        """The participant (not the speaker) addressed last in text, or None."""
        best: tuple[int, str] | None = None
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                name = self.lookup[match.group("n")]
                if name != speaker and (best is None or match.start("n") >= best[0]):
                    best = (match.start("n"), name)
        return best[1] if best else None

    def mentioned(self, text: str, speaker: str) -> str | None:
        """The participant (not the speaker) named last in text, addressed or not."""
        last = None
        for match in self.mention.finditer(text):
            name = self.lookup[match.group("n")]
            if name != speaker:
                last = name
        return last


def pair_streak(history: Sequence[str]) -> tuple[int, frozenset[str]]:
    """How many of the latest turns alternate between the same two speakers, and who."""
    if len(history) < 2 or history[-1] == history[-2]:
        return (min(len(history), 1), frozenset(history[-1:]))
    pair = (history[-1], history[-2])
    length = 2
    while length < len(history) and history[-1 - length] == pair[length % 2]:
        length += 1
    return length, frozenset(pair)


@dataclass(frozen=True)
class Facts:
    """What a speaker policy may look at."""

    names: tuple[str, ...]
    counts: Mapping[str, int]  # persona turns so far
    history: tuple[str, ...]  # speakers of persona turns, in order
    addressed: str | None  # who the last turn addressed
    talkativeness: Mapping[str, float]
    max_pair_handoffs: int  # a pair may hand the floor back and forth this many times
    silence_turns: int  # someone silent this long is invited by the moderator

    @property
    def last(self) -> str | None:
        """Who spoke last."""
        return self.history[-1] if self.history else None

    def silent_for(self, name: str) -> int:
        """Persona turns since name last spoke (all of them if never)."""
        for back, speaker in enumerate(reversed(self.history)):
            if speaker == name:
                return back
        return len(self.history)


@dataclass(frozen=True)
class Choice:
    """A speaker and why: start, addressed, draw, invited, round_robin, random, llm..."""

    speaker: str
    reason: str

    @property
    def invited(self) -> bool:
        """True when the moderator hands the floor to a quiet participant by name."""
        return self.reason == "invited"


def candidates(facts: Facts) -> list[str]:
    """Who may speak next: not the last speaker, nor a pair that held the floor too long."""
    out = [n for n in facts.names if n != facts.last] or list(facts.names)
    streak, pair = pair_streak(facts.history)
    if len(pair) == 2 and streak > facts.max_pair_handoffs:
        out = [n for n in out if n not in pair] or out
    return out


def _weighted(facts: Facts, names: Sequence[str], rng: Random) -> str:
    # Favour those who have spoken least, scaled by how talkative each persona is.
    weights = [
        max(facts.talkativeness.get(n, 0.5), 0.01) / (1 + facts.counts.get(n, 0)) ** 2
        for n in names
    ]
    return rng.choices(list(names), weights=weights)[0]


def _quietest(facts: Facts, names: Sequence[str]) -> str:
    return max(names, key=lambda n: (facts.silent_for(n), -facts.counts.get(n, 0)))


def natural(facts: Facts, rng: Random) -> Choice:
    """The addressed participant speaks, unless a pair has held the floor too long or
    someone has been silent too long: then the moderator invites the quietest by name."""
    allowed = candidates(facts)
    if facts.last is None:
        return Choice(rng.choice(allowed), "start")
    streak, pair = pair_streak(facts.history)
    if len(pair) == 2 and streak > facts.max_pair_handoffs and len(facts.names) > 2:
        return Choice(_quietest(facts, allowed), "invited")
    silent = [n for n in allowed if facts.silent_for(n) >= facts.silence_turns]
    if facts.silence_turns > 0 and silent:
        return Choice(_quietest(facts, silent), "invited")
    if facts.addressed in allowed:
        return Choice(facts.addressed, "addressed")
    return Choice(_weighted(facts, allowed, rng), "draw")


def round_robin(facts: Facts, rng: Random) -> Choice:
    """Everyone in file order, over and over."""
    if facts.last is None:
        return Choice(facts.names[0], "round_robin")
    following = (facts.names.index(facts.last) + 1) % len(facts.names)
    return Choice(facts.names[following], "round_robin")


def random_pick(facts: Facts, rng: Random) -> Choice:
    """Anyone but the last speaker, uniformly."""
    return Choice(rng.choice([n for n in facts.names if n != facts.last] or list(facts.names)),
                  "random")  # fmt: skip


def choose(policy: str, facts: Facts, rng: Random, selected: str | None = None) -> Choice:
    """The next speaker under `policy`; for `llm`, `selected` is the selector's answer."""
    if policy == "round_robin":
        return round_robin(facts, rng)
    if policy == "random":
        return random_pick(facts, rng)
    if policy == "llm":
        if selected is not None and selected in candidates(facts):
            return Choice(selected, "llm")
        fallback = natural(facts, rng)
        return Choice(fallback.speaker, f"llm_fallback_{fallback.reason}")
    if policy == "natural":
        return natural(facts, rng)
    raise ValueError(f"unknown speaker policy {policy!r}")


def parse_selection(answer: str, names: Sequence[str]) -> str | None:
    """The one candidate an answer names, strictly: exactly one name, nothing else but
    punctuation, quotes or a JSON wrapper; otherwise None."""
    text = answer.strip()
    match = re.fullmatch(r'\{\s*"(?:speaker|name|next)"\s*:\s*"([^"]*)"\s*\}', text)
    if match:
        text = match.group(1)
    text = text.strip().strip("\"'`*.,!:;()[] \n\t")
    found = [n for n in names if n == text or n.casefold() == text.casefold()]
    return found[0] if len(found) == 1 else None
