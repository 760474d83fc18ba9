"""Cleaning a streamed reply as it arrives.

- a leading own name tag ("Alice:", "**Alice:**", "Alice (Dr. Alice Ray):") is dropped;
- the reply ends where the model starts writing another participant's lines;
- the reply ends where a sentence repeats an earlier one (small models loop), also
  on a new line or behind a list marker.

Text is released as soon as it cannot be affected by any of these, so the first
words reach the terminal without delay; only a possible tag or repeat is held back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_MAX_TAG = 120  # past this many characters the start of a reply is not a name tag
# Sentences of fewer characters and words ("Yes.", "I agree.", "Thank you.") may repeat
# naturally; "I think so." again is a loop.
_MIN_REPEAT = 12
_MIN_REPEAT_WORDS = 3
_SALVAGE_BOUND = 600  # characters read past an impersonating start to find a sentence
_TAG_REST = re.compile(r"(?:\s*\([^)\n]*\)?)?\**\s*(?::\**)?\Z")
# A sentence ends at its punctuation, or where its line ends.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)|\n")
_FINISHED = re.compile(r"[.!?]+[\"')\]]*(?=\s|\Z)")
# A line's list marker or quote sign is not part of its sentence ("- ", "2. ", "> ").
_MARKER = re.compile(r"\s*(?:(?:[-*+>\u2022]|\d+[.)])(?=\s|\Z)\s*)*")


def _names(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))


def _tag(names: Sequence[str]) -> str:
    # "Bob:", "**Bob:**", "Bob (Dr. Bob Ray):" and the like.
    return rf"(?:\*\*)?(?:{_names(names)})(?:\s*\([^)\n]*\))?(?:\*\*)?\s*:(?:\*\*)?"


def _norm(sentence: str) -> str:
    return " ".join(_MARKER.sub("", sentence, count=1).lower().split())


def _whole_sentences(text: str) -> str:
    """The text up to its last finished sentence (all of it if none is finished)."""
    ends = [m.end() for m in _FINISHED.finditer(text)]
    return text[: ends[-1]] if ends else text


@lru_cache(maxsize=256)
def _patterns(
    own_names: tuple[str, ...], other_names: tuple[str, ...], other_headers: tuple[str, ...]
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str] | None, int]:
    """A speaker's patterns, compiled once per table rather than once per turn."""
    all_names = tuple(n for n in (*own_names, *other_names, *other_headers) if n)
    # A leading own tag, or the speaker's own name alone on the first line.
    # Also the speaker addressing itself ("Amara, I'm glad..."): small models echo the
    # moderator's cue ("Amara, would you start?").
    own = re.compile(
        rf"\s*(?:{_tag(own_names)}[ \t]*\n?|(?:\*\*)?(?:{_names(own_names)})"
        rf"(?:\s*\([^)\n]*\))?(?:\*\*)?[ \t]*\n|(?:{_names(own_names)}),(?:[ \t]+|[ \t]*\n))"
    )
    # The speaker's own tag again at a line start: the same speaker, keep the words
    # (only once a word follows, so the spaces after the tag go with it).
    own_again = re.compile(rf"\n[ \t]*{_tag(own_names)}[ \t]*(?=\S)")
    own_again_final = re.compile(rf"\n[ \t]*{_tag(own_names)}[ \t]*")
    cut = [_tag(other_names)] if other_names else []
    if other_headers:
        cut.append(rf"(?:\*\*)?(?:{_names(other_headers)})(?!\w)")
    other = re.compile(rf"(?:^|\n)[ \t]*(?:{'|'.join(cut)})") if cut else None
    hold_tail = max((len(n) for n in all_names), default=0) + 8
    return own, own_again, own_again_final, other, hold_tail


class ReplyFilter:
    """Feed it deltas; it returns the text that is safe to show now."""

    def __init__(
        self,
        own_names: Sequence[str],
        other_names: Sequence[str],
        other_headers: Sequence[str] = (),
        *,
        salvaging: bool = True,
    ) -> None:
        """own_names/other_names: tags to drop/cut at; other_headers: full names that,
        alone at a line start (no colon needed), also mean someone else is speaking."""
        self._own_names = tuple(own_names)
        self._other_names = tuple(other_names)
        self._other_headers = tuple(other_headers)
        self._all_names = tuple(n for n in (*own_names, *other_names, *other_headers) if n)
        patterns = _patterns(self._own_names, self._other_names, self._other_headers)
        self._own, self._own_again, self._own_again_final, self._other = patterns[:4]
        self._hold_tail = patterns[4]
        self._buf = ""
        self._raw = ""
        self._started = False
        self._shown = 0
        self._sentence_start = 0
        self._seen: list[str] = []
        # Cut as someone else before any words of its own: read on until salvage() has
        # a whole sentence to keep.
        self._salvaging = False
        # The filter salvage() uses must not salvage in turn (a reply of nested tags
        # would recurse without end).
        self._may_salvage = salvaging
        self.reason: str | None = None  # "impersonation" or "repetition" once cut

    def _salvager(self) -> ReplyFilter:
        again = ReplyFilter(
            self._own_names, self._other_names, self._other_headers, salvaging=False
        )
        raw = re.sub(rf"^\s*(?:{_tag(self._all_names)}|(?:{_names(self._all_names)})\s*\n)",
                     "", self._raw)  # fmt: skip
        again.feed(raw)
        return again

    def salvage(self) -> str:
        """The reply minus a leading tag of anyone's, cut at the next, in whole sentences:
        a last resort when a small model keeps answering as someone else."""
        again = self._salvager()
        again.finish()
        # The stream may have been closed mid-sentence (see done): keep whole sentences.
        return again.text if again.reason else _whole_sentences(again.text)

    def _salvage_ready(self) -> bool:
        if len(self._raw) > _SALVAGE_BOUND:
            return True
        again = self._salvager()
        return again.reason is not None or _SENTENCE_END.search(again._buf) is not None

    @property
    def done(self) -> bool:
        """True once the reply was cut (and, if cut at its start, once salvage() has a
        sentence): the rest of the stream is not needed."""
        return self.reason is not None and not self._salvaging

    @property
    def text(self) -> str:
        """The cleaned reply so far (the whole reply after finish())."""
        return self._buf.strip() if self._started else ""

    def feed(self, delta: str) -> str:
        """Add a delta; return newly showable text."""
        self._raw += delta
        if self.reason is not None:
            if self._salvaging:
                self._salvaging = not self._salvage_ready()
            return ""
        self._buf += delta
        if not self._started:
            if self._maybe_tag(self._buf.lstrip()):
                return ""
            self._start()
        out = self._release(final=False)
        if self._salvaging:
            self._salvaging = not self._salvage_ready()
        return out

    def finish(self) -> str:
        """The stream ended: return whatever was still held back."""
        if not self._started:
            self._start()
        if self.reason is not None:
            self._salvaging = False  # the stream is over: salvage() has all there is
            return ""
        return self._release(final=True)

    def _maybe_tag(self, s: str) -> bool:
        """Could the start of the reply still turn into someone's name tag?"""
        if len(s) > _MAX_TAG or "\n" in s.rstrip("\n"):
            return False
        t = s[2:] if s.startswith("**") else s.lstrip("*")
        for name in self._all_names:
            if name.startswith(t):
                return True
            if t.startswith(name) and _TAG_REST.match(t, len(name)):
                return True
        # The speaker's own name and a comma may still be a vocative to drop ("Amara, ").
        return t.rstrip() in {f"{n}," for n in self._own_names}

    def _start(self) -> None:
        self._started = True
        match = self._own.match(self._buf)
        self._buf = self._buf[match.end() if match else 0 :].lstrip()

    def _cut(self, at: int, reason: str) -> None:
        self._buf = self._buf[:at].rstrip()
        self.reason = reason
        self._salvaging = self._may_salvage and not self._buf and self._shown == 0

    def _check_repeats(self, final: bool) -> None:
        pos = self._sentence_start
        while True:
            match = _SENTENCE_END.search(self._buf, pos)
            if match:
                # A line break ends the sentence and starts the next one.
                end = match.start() if match.group() == "\n" else match.end()
                pos = match.end()
            elif final:
                end = pos = len(self._buf)
            else:
                return
            sentence = _norm(self._buf[self._sentence_start : end])
            # Only a list marker or blank so far: it stays with the sentence that follows
            # (so a cut there takes the marker too).
            if sentence:
                long = len(sentence) >= _MIN_REPEAT or len(sentence.split()) >= _MIN_REPEAT_WORDS
                if long and sentence in self._seen:
                    self._cut(self._sentence_start, "repetition")
                    return
                self._seen.append(sentence)
                self._sentence_start = end
            if not match:
                return

    def _release(self, final: bool) -> str:
        if "\n" in self._buf[self._shown :]:
            head, tail = self._buf[: self._shown], self._buf[self._shown :]
            own_again = self._own_again_final if final else self._own_again
            self._buf = head + own_again.sub("\n", tail)
            self._sentence_start = min(self._sentence_start, len(self._buf))
        if self._other is not None:
            match = self._other.search(self._buf, max(0, self._shown - 1))
            if match:
                self._cut(match.start(), "impersonation")
        if self.reason is None:
            self._check_repeats(final)
        if final or self.reason is not None:
            self._buf = self._buf.rstrip()
            end = len(self._buf)
        else:
            end = len(self._buf)
            # Hold a trailing line start that could still become someone's tag...
            newline = self._buf.rfind("\n", max(0, end - self._hold_tail))
            if newline >= 0:
                end = newline
            # ...and a sentence that so far repeats the start of an earlier one.
            # (Only a marker so far matches any sentence: "2." waits for its words.)
            partial = _norm(self._buf[self._sentence_start :])
            if any(s.startswith(partial) for s in self._seen):
                end = min(end, self._sentence_start)
            # Whitespace before the held part waits too: if the reply ends there, it goes.
            end = len(self._buf[:end].rstrip())
        out = self._buf[self._shown : end] if end > self._shown else ""
        self._shown = max(self._shown, end)
        return out
