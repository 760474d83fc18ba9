"""Guards on a reply, by the same definitions `roundtable metrics` counts: echo, leak, identity.

Pure: the turn loop hands in what the turn knows (the n-grams said so far in the run, the
n-grams of the prompts the speaker was sent, the other participants' name forms) and
gets a verdict; `cut` drops the sentences that offend and keeps the rest.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from . import textstats as ts
from .metrics import ECHO_N, ECHO_SHARE, LEAK_N

CHECKS = ("echo", "leak", "identity")


@dataclass(frozen=True)
class Thresholds:
    """When a reply fails: echo and leak shares (exceeded = fail), and the identity check."""

    echo: float = ECHO_SHARE  # more than this share of the reply's 5-grams said before
    leak: float = 0.0  # more than this share of its 6-grams copied from its prompts
    identity: bool = True  # claiming another participant's name, or to be an AI


@dataclass(frozen=True)
class Known:
    """What a turn knows to judge its reply by (the sets are read, never changed)."""

    said: Set[tuple[str, ...]]  # the 5-grams said so far in the run, introductions included
    prompts: Set[tuple[str, ...]]  # the 6-grams of the prompts sent to this speaker
    others: tuple[str, ...]  # the other participants' name forms
    own: tuple[str, ...] = ()  # the speaker's own name forms


@dataclass(frozen=True)
class Verdict:
    """Which checks a reply failed, and which of its sentences offend."""

    failed: tuple[str, ...]  # in CHECKS order
    sentences: tuple[str, ...]
    offending: tuple[int, ...]  # indices into sentences

    @property
    def ok(self) -> bool:
        """True when the reply passed every check."""
        return not self.failed


class Said:
    """The word 5-grams said so far in a run, grown one text at a time."""

    def __init__(self, n: int = ECHO_N) -> None:
        self.n = n
        self.grams: set[tuple[str, ...]] = set()

    def add(self, text: str) -> None:
        """Count a text as said (an introduction or an accepted turn)."""
        self.grams.update(ts.ngrams(ts.words(text), self.n))


def _claims(text: str, others: Sequence[str], own: Sequence[str]) -> bool:
    return ts.claims_identity(text, others, own) or ts.claims_ai(text)


def judge(text: str, known: Known, thresholds: Thresholds = Thresholds()) -> Verdict:
    """The verdict on a reply: the turn as a whole decides a check, its sentences the cut."""
    sentences = tuple(ts.sentences(text))
    failed: list[str] = []
    bad: set[int] = set()
    said: dict[str, list[str]] = {}  # the words of the reply and its sentences, split once

    def share(s: str, grams: Set[tuple[str, ...]], n: int) -> float:
        if s not in said:
            said[s] = ts.words(s)
        return ts.copied_share(said[s], grams, n)

    tests = (
        ("echo", lambda s: share(s, known.said, ECHO_N) > thresholds.echo),
        ("leak", lambda s: share(s, known.prompts, LEAK_N) > thresholds.leak),
        ("identity", lambda s: _claims(s, known.others, known.own)),
    )
    for name, offends in tests:
        if name == "identity" and not thresholds.identity:
            continue
        if not offends(text):
            continue
        failed.append(name)
        bad.update(i for i, s in enumerate(sentences) if offends(s))
    return Verdict(tuple(failed), sentences, tuple(sorted(bad)))


def cut(text: str, verdict: Verdict) -> str:
    """The reply without its offending sentences (joined by spaces, or lines if it had them)."""
    if not verdict.offending:
        return text
    dropped = set(verdict.offending)
    kept = [s for i, s in enumerate(verdict.sentences) if i not in dropped]
    return ("\n" if "\n" in text.strip() else " ").join(kept)
