"""Removing terminal control sequences from untrusted text (model output, file text)."""

from __future__ import annotations

import re

# Escape sequences and control characters that could move the cursor, retitle the
# window, hide text or ring bells. Newlines and tabs are kept.
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC ... BEL or ST
    r"|\x1b[P^_X][^\x1b]*\x1b\\"  # DCS, PM, APC, SOS ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[ -/]*[0-~]"  # other ESC sequences
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\r(?!\n)"  # a bare carriage return would let text overwrite the line
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"  # other C0 and C1 controls
)
_MAX_HELD = 256  # longest incomplete escape sequence held back between deltas


def sanitize(text: str) -> str:
    """Remove terminal control sequences from untrusted text (keeps newlines and tabs)."""
    return _ESCAPES.sub("", text)


# The start of an escape sequence that is not finished yet (at the end of the text).
_UNFINISHED = re.compile(
    r"(?:\x1b(?:\][^\x07\x1b]*\x1b?|[P^_X][^\x1b]*\x1b?|\[[0-?]*[ -/]*|[ -/]*)|\x9b[0-?]*[ -/]*)\Z"
)


class StreamSanitizer:
    """sanitize() for text that arrives in pieces: an escape split across deltas is held."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, delta: str) -> str:
        """Return the safe part of held + delta; keep back an unfinished escape sequence."""
        text = self._held + delta
        self._held = ""
        match = _UNFINISHED.search(text)
        if match and len(text) - match.start() < _MAX_HELD:
            self._held, text = text[match.start() :], text[: match.start()]
        return sanitize(text)

    def flush(self) -> str:
        """The stream ended: drop whatever unfinished sequence was held."""
        held, self._held = self._held, ""
        return sanitize(held).replace("\x1b", "")
