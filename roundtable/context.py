"""The shared transcript every request carries, and keeping it inside the context window.

Entries are only ever appended, so consecutive requests share a growing prefix that
servers can serve from their prompt cache. When the next request would not fit, the
oldest entries are folded into a short recap in one large step (down to about half
of the room), so the prefix changes rarely: the cache is rebuilt only at folds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.DOTALL)
_RECAP_WORDS = 30  # words kept from each folded turn in an extractive recap
SEPARATOR_TOKENS = 2  # the blank line between entries


@dataclass(frozen=True)
class Entry:
    """One transcript entry, rendered once, counted once."""

    speaker: str
    text: str
    kind: str  # turn, introduction or moderator
    rendered: str
    tokens: int


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

    def __init__(
        self,
        render_entry: Callable[[str, str, str], str],
        render_recap: Callable[[list[str]], str],
        count: Callable[[str], int],
    ) -> None:
        self._render_entry = render_entry
        self._render_recap = render_recap
        self._count = count
        self.entries: list[Entry] = []
        self.recap_lines: list[str] = []
        self.recap = ""
        self.recap_tokens = 0
        self.folds = 0
        self.folded_entries = 0
        self._text = ""

    def add(self, speaker: str, text: str, kind: str) -> Entry:
        """Append an entry (rendered and counted once)."""
        rendered = self._render_entry(speaker, text, kind)
        entry = Entry(speaker, text, kind, rendered, self._count(rendered))
        self.entries.append(entry)
        self._text = f"{self._text}\n\n{rendered}" if self._text else rendered
        return entry

    @property
    def text(self) -> str:
        """The transcript as sent: the recap (if any), then the entries."""
        return self._text

    @property
    def tokens(self) -> int:
        """Tokens of `text`, from the per-entry counts (close to a full recount)."""
        parts = [e.tokens for e in self.entries] + ([self.recap_tokens] if self.recap else [])
        return sum(parts) + SEPARATOR_TOKENS * max(0, len(parts) - 1)

    def fold(
        self,
        target: int,
        recap_budget: int,
        summarize: Callable[[str, list[Entry]], str | None] | None = None,
    ) -> int:
        """Fold the oldest entries until the text is within `target` tokens; return how many."""
        keep = list(self.entries)
        folded: list[Entry] = []
        # Estimate the recap's size as we go: it grows by one short line per entry.
        recap_estimate = self.recap_tokens
        while keep and self._size(keep) + recap_estimate > target:
            entry = keep.pop(0)
            folded.append(entry)
            recap_estimate = min(recap_budget, recap_estimate + self._count(extract(entry)))
        if not folded:
            return 0
        new_recap = summarize(self.recap, folded) if summarize else None
        if new_recap:
            self.recap_lines = [new_recap]
        else:
            self.recap_lines += [extract(e) for e in folded]
        self._set_recap(recap_budget)
        self.entries = keep
        self.folds += 1
        self.folded_entries += len(folded)
        body = "\n\n".join(e.rendered for e in keep)
        self._text = "\n\n".join(part for part in (self.recap, body) if part)
        return len(folded)

    def _size(self, entries: list[Entry]) -> int:
        return sum(e.tokens for e in entries) + SEPARATOR_TOKENS * len(entries)

    def _set_recap(self, budget: int) -> None:
        # The recap is bounded too: past its budget, its oldest lines go.
        while True:
            self.recap = self._render_recap(self.recap_lines) if self.recap_lines else ""
            self.recap_tokens = self._count(self.recap) if self.recap else 0
            if self.recap_tokens <= budget or len(self.recap_lines) <= 1:
                break
            drop = max(1, len(self.recap_lines) // 4)
            self.recap_lines = self.recap_lines[drop:]
        if self.recap_tokens > budget and self.recap_lines:
            # A single over-long line (a model summary): keep its start.
            words = self.recap_lines[0].split()
            self.recap_lines = [" ".join(words[: max(1, budget // 2)]) + " ..."]
            self.recap = self._render_recap(self.recap_lines)
            self.recap_tokens = self._count(self.recap)
