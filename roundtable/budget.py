"""The context budget: the window, token counts per endpoint, and folding the shared transcript.

Entries are only ever appended, so consecutive requests share a growing prefix that
servers can serve from their prompt cache. When the next request would not fit, the
oldest entries are folded into a short recap in one large step (down to about half
of the room), so the prefix changes rarely: the cache is rebuilt only at folds.
Every fold is an event (`Fold`) that the run records, so a resume rebuilds the same
text from the records alone, without a model or tokenizer call.

Counting an entry with a server's tokenizer is a request, so it waits until it matters:
while an upper bound (`most_tokens`: no tokenizer makes more tokens than the text has
UTF-8 bytes, plus the few it adds) shows that everything fits, nothing is counted.
Near the window, the entries not counted yet are counted exactly before any fold.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .client import ChatClient, ContextOverflow, IncompleteStream, estimate_tokens
from .errors import InputError, RoundtableError

_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.DOTALL)
_RECAP_WORDS = 30  # words kept from each folded turn in an extractive recap
SEPARATOR_TOKENS = 2  # the blank line between entries
MESSAGE_OVERHEAD = 16  # chat-template tokens around two messages
ESTIMATE_MARGIN = 1.15  # counts estimated from characters are padded by this much
MODERATOR = "Moderator"
ADDED_TOKENS = 4  # tokens a tokenizer may add to a text's own (BOS, EOS, a leading space)


def most_tokens(text: str) -> int:
    """At most how many tokens any tokenizer makes of text: each token stands for at least
    one of its UTF-8 bytes, and a tokenizer adds a few of its own."""
    return len(text.encode("utf-8", "surrogatepass")) + ADDED_TOKENS


@dataclass(frozen=True)
class Entry:
    """One transcript entry, rendered once, counted at most once (by its author's endpoint)."""

    speaker: str
    text: str
    kind: str  # turn, introduction or moderator
    rendered: str
    tokens: int | None  # None: not counted yet (only its upper bound is known)

    @functools.cached_property
    def most(self) -> int:
        """Its tokens, or while it is not counted, the most it can be (worked out once: every
        fit sums it over the whole transcript; counting makes a new entry)."""
        return self.tokens if self.tokens is not None else most_tokens(self.rendered)


@dataclass(frozen=True)
class Fold:
    """A fold event: the oldest `entries` entries were replaced by `recap` (as sent)."""

    before_turn: int
    entries: int
    recap: str
    recap_tokens: int
    lines: tuple[str, ...]  # the recap's lines, which the next extractive fold extends
    by: str  # extractive | model
    window: int | None  # the window the fold made room in (it may have been learned)

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record of this fold."""
        return {"type": "fold", "before_turn": self.before_turn, "entries": self.entries,
                "recap": self.recap, "recap_tokens": self.recap_tokens,
                "lines": list(self.lines), "by": self.by, "window": self.window}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fold:
        """Read a fold record."""
        return cls(int(data["before_turn"]), int(data["entries"]), str(data["recap"]),
                   int(data["recap_tokens"]), tuple(data.get("lines") or ()),
                   str(data.get("by", "extractive")), data.get("window"))  # fmt: skip


def extract(entry: Entry, words: int = _RECAP_WORDS) -> str:
    """A one-line extractive recap of an entry: its first sentence, shortened."""
    flat = " ".join(entry.text.split())
    match = _SENTENCE.match(flat)
    first = match.group(1) if match else flat
    parts = first.split()
    if len(parts) > words:
        first = " ".join(parts[:words]) + " ..."
    return f"{entry.speaker}: {first}"


class SharedTranscript:
    """The append-only discussion text, plus the recap of what was folded away."""

    def __init__(self, render_recap: Callable[[list[str]], str]) -> None:
        self._render_recap = render_recap
        self.entries: list[Entry] = []
        self.recap_lines: list[str] = []
        self.recap = ""
        self.recap_tokens = 0
        self.folds = 0
        self.folded_entries = 0
        self._text = ""

    def add(self, entry: Entry) -> Entry:
        """Append an entry."""
        self.entries.append(entry)
        self._text = f"{self._text}\n\n{entry.rendered}" if self._text else entry.rendered
        return entry

    @property
    def text(self) -> str:
        """The transcript as sent: the recap (if any), then the entries."""
        return self._text

    @property
    def tokens(self) -> int:
        """Tokens of `text`, from the per-entry counts (close to a full recount); an upper
        bound while some entry is not counted (see `counted`)."""
        parts = [e.most for e in self.entries] + ([self.recap_tokens] if self.recap else [])
        return sum(parts) + SEPARATOR_TOKENS * max(0, len(parts) - 1)

    @property
    def counted(self) -> bool:
        """Whether every entry is counted (so `tokens` is a count, not a bound)."""
        return all(e.tokens is not None for e in self.entries)

    def plan_fold(
        self,
        target: int,
        recap_budget: int,
        count: Callable[[str], int],
        summarize: Callable[[str, list[Entry]], str | None] | None = None,
        *,
        before_turn: int = 0,
        window: int | None = None,
    ) -> Fold | None:
        """The fold that brings the text within `target` tokens, or None if none is needed."""
        keep = list(self.entries)
        folded: list[Entry] = []
        # Estimate the recap's size as we go: it grows by one short line per entry.
        recap_estimate = self.recap_tokens
        while keep and self._size(keep) + recap_estimate > target:
            entry = keep.pop(0)
            folded.append(entry)
            recap_estimate = min(recap_budget, recap_estimate + count(extract(entry)))
        if not folded:
            return None
        summary = summarize(self.recap, folded) if summarize else None
        lines = [summary] if summary else self.recap_lines + [extract(e) for e in folded]
        recap, tokens, lines = self._bounded_recap(lines, recap_budget, count)
        by = "model" if summary else "extractive"
        return Fold(before_turn, len(folded), recap, tokens, tuple(lines), by, window)

    def apply(self, fold: Fold) -> None:
        """Apply a fold event (just planned, or read back from a transcript)."""
        self.entries = self.entries[fold.entries :]
        self.recap_lines = list(fold.lines)
        self.recap, self.recap_tokens = fold.recap, fold.recap_tokens
        self.folds += 1
        self.folded_entries += fold.entries
        body = "\n\n".join(e.rendered for e in self.entries)
        self._text = "\n\n".join(part for part in (self.recap, body) if part)

    def fold(
        self,
        target: int,
        recap_budget: int,
        count: Callable[[str], int],
        summarize: Callable[[str, list[Entry]], str | None] | None = None,
    ) -> int:
        """Plan and apply a fold; return how many entries it folded."""
        event = self.plan_fold(target, recap_budget, count, summarize)
        if event is None:
            return 0
        self.apply(event)
        return event.entries

    def _size(self, entries: list[Entry]) -> int:
        return sum(e.most for e in entries) + SEPARATOR_TOKENS * len(entries)

    def _bounded_recap(
        self, lines: list[str], budget: int, count: Callable[[str], int]
    ) -> tuple[str, int, list[str]]:
        # The recap is bounded too: past its budget, its oldest lines go.
        while True:
            recap = self._render_recap(lines) if lines else ""
            tokens = count(recap) if recap else 0
            if tokens <= budget or len(lines) <= 1:
                break
            lines = lines[max(1, len(lines) // 4) :]
        if tokens > budget and lines:
            # A single over-long line (a model summary): keep its start.
            words = lines[0].split()
            lines = [" ".join(words[: max(1, budget // 2)]) + " ..."]
            recap = self._render_recap(lines)
            tokens = count(recap)
        return recap, tokens, lines


class Counter:
    """Counts tokens with one endpoint's tokenizer, else a padded estimate."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.exact = True  # False once a count had to be estimated

    @property
    def defers(self) -> bool:
        """Whether a count is a request to the server's tokenizer, and so worth putting off
        (a stand-in client without `counts_by_request` is counted at once)."""
        return bool(getattr(self.client, "counts_by_request", False))

    def __call__(self, text: str) -> int:
        counted = self.client.count_tokens(text)
        if counted is not None:
            return counted
        self.exact = False
        return int(estimate_tokens(text) * ESTIMATE_MARGIN) + 1


@dataclass(frozen=True)
class Room:
    """What fits: the prompt's tokens, and whether every count came from a tokenizer."""

    prompt_tokens: int | None
    exact: bool


class Budget:
    """The context window and the shared transcript kept inside it."""

    def __init__(
        self,
        *,
        clients: Mapping[str, ChatClient],
        summary_client: ChatClient,
        render_entry: Callable[[str, str, str], str],
        render_recap: Callable[[list[str]], str],
        system: str,
        max_tokens: int,
        summarize_with: str | None = None,
        seed: int = 0,
        on_fold: Callable[[Fold], None] | None = None,
        on_entry: Callable[[Entry], None] | None = None,
    ) -> None:
        """`summarize_with`: the summarize instructions when folds are recapped by the model
        (fold_summary: model), else None for an extractive recap."""
        self.shared = SharedTranscript(render_recap)
        self.window: int | None = None
        self.system = system
        self.max_tokens = max_tokens
        self.summary_client = summary_client
        self._render_entry = render_entry
        self._summarize_with = summarize_with
        self._seed = seed
        self._on_fold = on_fold or (lambda fold: None)
        self._on_entry = on_entry or (lambda entry: None)
        self._counters: dict[int, Counter] = {}
        self._by_speaker = {name: self._counter(c) for name, c in clients.items()}
        self._by_speaker[MODERATOR] = self._counter(summary_client)
        self._system_tokens: dict[int, int] = {}  # per counter
        self._own_tokens: tuple[int, str, int] = (0, "", 0)  # the last (counter, own, tokens)

    def _counter(self, client: ChatClient) -> Counter:
        return self._counters.setdefault(id(client), Counter(client))

    def counter(self, speaker: str) -> Counter:
        """The counter of a speaker's own endpoint (the table's for the moderator)."""
        return self._by_speaker.get(speaker) or self._by_speaker[MODERATOR]

    def entry(
        self, speaker: str, text: str, kind: str, tokens: int | None = None, *, later: bool = False
    ) -> Entry:
        """Append an entry: `tokens` if known, else counted by its author's endpoint, or left
        to be counted when it matters where that takes a request (always with `later`: a
        replay of an entry the run had not counted)."""
        rendered = self._render_entry(speaker, text, kind)
        if tokens is None and not later:
            counter = self.counter(speaker)
            if not counter.defers:
                tokens = counter(rendered)
        added = self.shared.add(Entry(speaker, text, kind, rendered, tokens))
        self._on_entry(added)  # live and replayed entries alike (the guards' "said so far")
        return added

    def _count_system(self, counter: Counter) -> int:
        # The system text is the same for every turn: counted once per endpoint.
        key = id(counter)
        if key not in self._system_tokens:
            self._system_tokens[key] = counter(self.system)
        return self._system_tokens[key]

    def _count_own(self, counter: Counter, own: str) -> int:
        # A turn's own part is the same for every attempt: counted once.
        if self._own_tokens[:2] != (id(counter), own):
            self._own_tokens = (id(counter), own, counter(own))
        return self._own_tokens[2]

    def _count_entries(self) -> None:
        """Count the entries not counted yet, each by its author's endpoint."""
        entries = self.shared.entries
        for i, e in enumerate(entries):
            if e.tokens is None:
                entries[i] = replace(e, tokens=self.counter(e.speaker)(e.rendered))

    def fit(
        self, speaker: str, own: str, *, turn: int, source: str | None = None, messages: int = 2
    ) -> Room:
        """Fold the transcript if this request (of at most `messages` messages) would not fit;
        return its prompt tokens (None where it surely fits and so was not counted)."""
        counter = self.counter(speaker)
        if self.window is None:
            return Room(None, self.exact)
        overhead = MESSAGE_OVERHEAD // 2 * max(2, messages)
        free = self.window - self.max_tokens - overhead - (8 + self.window // 50)
        system = self._count_system(counter)
        if counter.defers:
            # Bounds first: far from the window they show that everything fits, and then
            # nothing is sent to the tokenizer (the prompt's own count is left unknown).
            room = free - system - most_tokens(own)
            if room >= 64 and self.shared.tokens <= room:
                return Room(None, self.exact)
        own_tokens = self._count_own(counter, own)
        fixed = system + own_tokens + overhead  # the prompt but the transcript
        room = free - system - own_tokens
        if room < 64:
            where = source or speaker
            raise InputError(
                f"{where}: this persona's prompt with the shared prompts ({fixed} tokens) plus "
                f"max_tokens ({self.max_tokens}) does not fit the {self.window}-token context "
                "window; shorten the prompt (or task/context.txt), raise --context-window or "
                "lower --max-tokens"
            )
        self._count_entries()
        if self.shared.tokens > room:
            # One large step (to half the room) so the cached prefix survives many turns.
            fold = self.shared.plan_fold(
                room // 2, room // 4, self.counter(MODERATOR), self._summarizer(),
                before_turn=turn, window=self.window,
            )  # fmt: skip
            if fold is not None:
                self.shared.apply(fold)
                self._on_fold(fold)
        return Room(fixed + self.shared.tokens, self.exact)

    @property
    def exact(self) -> bool:
        """True while every count came from a server's tokenizer (none estimated)."""
        return all(c.exact for c in self._counters.values())

    def overflowed(self, exc: ContextOverflow, prompt: int | None, messages: Sequence[Any]) -> int:
        """A server said the context is full: learn the window from it; return it."""
        estimate = prompt or sum(estimate_tokens(m["content"]) for m in messages)
        self.window = exc.limit or int((estimate + self.max_tokens) * 0.75)
        return self.window

    def _summarizer(self) -> Callable[[str, list[Entry]], str | None] | None:
        if self._summarize_with is None:
            return None
        instructions = self._summarize_with

        def summarize(recap: str, folded: list[Entry]) -> str | None:
            text = "\n\n".join([recap, *(e.rendered for e in folded)]).strip()
            ask = (
                f"{text}\n\n---\n{instructions}\n"
                "Summarise only the part of the discussion above, in under 120 words."
            )
            try:
                result = self.summary_client.complete(
                    [{"role": "system", "content": self.system}, {"role": "user", "content": ask}],
                    temperature=0.2,
                    max_tokens=min(200, self.max_tokens),
                    seed=self._seed,
                    stream=False,
                )
            except (RoundtableError, IncompleteStream, ContextOverflow):
                return None  # the extractive recap stands in
            return result.text.strip() or None

        return summarize
