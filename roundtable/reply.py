"""Cleaning a streamed reply: drop the speaker's own leading name tag, stop at anyone else's."""

from __future__ import annotations

import re
from collections.abc import Sequence

_HOLD_START = 80  # characters held back at the start while a name tag may be forming


def _names(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))


def _tag(names: Sequence[str]) -> str:
    # "Bob:", "**Bob:**", "Bob (Dr. Bob Ray):" and the like.
    return rf"(?:\*\*)?(?:{_names(names)})(?:\s*\([^)\n]*\))?(?:\*\*)?\s*:(?:\*\*)?"


class ReplyFilter:
    """Feed it deltas; it returns the text that is safe to show now."""

    def __init__(self, own_names: Sequence[str], other_names: Sequence[str]) -> None:
        # "Alice:", "**Alice:**", "Alice (Dr. Alice Smith):" at the very start of a reply.
        self._own = re.compile(rf"^\s*{_tag(own_names)}[ \t]*\n?")
        # The speaker's own tag again at a line start: the same speaker, keep the words.
        # (Only once a word follows, so that the spaces after the tag go with it.)
        self._own_again = re.compile(rf"\n[ \t]*{_tag(own_names)}[ \t]*(?=\S)")
        self._own_again_final = re.compile(rf"\n[ \t]*{_tag(own_names)}[ \t]*")
        # Another participant's tag at the start of the reply or of a line: the model is
        # writing their turn, so the reply ends there.
        self._other = re.compile(rf"(?:^|\n)[ \t]*{_tag(other_names)}") if other_names else None
        self._hold_tail = max((len(n) for n in (*other_names, *own_names)), default=0) + 8
        self._buf = ""
        self._started = False
        self._shown = 0
        self.cut = False  # True when the reply was cut at another participant's tag

    def feed(self, delta: str) -> str:
        """Add a delta; return newly showable text."""
        if self.cut:
            return ""
        self._buf += delta
        if not self._started:
            if len(self._buf) < _HOLD_START and "\n" not in self._buf.lstrip():
                return ""
            self._strip_own()
        return self._release(final=False)

    def finish(self) -> str:
        """The stream ended: return whatever was still held back."""
        if self.cut:
            return ""
        if not self._started:
            self._strip_own()
        return self._release(final=True)

    @property
    def text(self) -> str:
        """The cleaned reply so far (the whole reply after finish())."""
        return self._buf.strip() if self.cut or self._started else ""

    def _strip_own(self) -> None:
        self._started = True
        self._buf = self._own.sub("", self._buf, count=1).lstrip()

    def _release(self, final: bool) -> str:
        if "\n" in self._buf[self._shown :]:
            head, tail = self._buf[: self._shown], self._buf[self._shown :]
            own_again = self._own_again_final if final else self._own_again
            self._buf = head + own_again.sub("\n", tail)
        if self._other is not None:
            match = self._other.search(self._buf)
            if match:
                self._buf = self._buf[: match.start()].rstrip()
                self.cut = True
                final = True
        end = len(self._buf)
        if not final:
            # Hold back a trailing line start that could still become someone's tag.
            newline = self._buf.rfind("\n", max(0, end - self._hold_tail))
            if newline >= 0:
                end = newline
            # Whitespace before the held part waits too: if the reply ends there, it goes.
            end = len(self._buf[:end].rstrip())
        else:
            self._buf = self._buf.rstrip()
            end = len(self._buf)
        out = self._buf[self._shown : end]
        self._shown = max(self._shown, end)
        return out
