"""Terminal output: colours, streaming, and scrubbing control sequences from model text.

The only module that imports colorama. It shows things; it decides nothing.
"""

from __future__ import annotations

import colorsys
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from colorama import Fore, Style

from .sanitize import StreamSanitizer, sanitize

_NAMED = {
    "red": Fore.RED, "green": Fore.GREEN, "yellow": Fore.YELLOW, "blue": Fore.BLUE,
    "magenta": Fore.MAGENTA, "cyan": Fore.CYAN, "white": Fore.WHITE,
    "bright_red": Fore.LIGHTRED_EX, "bright_green": Fore.LIGHTGREEN_EX,
    "bright_yellow": Fore.LIGHTYELLOW_EX, "bright_blue": Fore.LIGHTBLUE_EX,
    "bright_magenta": Fore.LIGHTMAGENTA_EX, "bright_cyan": Fore.LIGHTCYAN_EX,
    "bright_white": Fore.LIGHTWHITE_EX,
}  # fmt: skip
# Readable on dark and light backgrounds, most distinct first.
_AUTO_ORDER = (
    "bright_cyan", "bright_magenta", "bright_yellow", "bright_green", "bright_blue",
    "bright_red", "cyan", "magenta", "yellow", "green", "blue", "red",
)  # fmt: skip


def _hex_code(value: str) -> str:
    r, g, b = (int(value[i : i + 2], 16) for i in (1, 3, 5))
    return f"\x1b[38;2;{r};{g};{b}m"


def assign_colors(requested: Sequence[str | None]) -> list[str]:
    """A distinct colour spec per participant: their own, or the next unused one.

    Past the 12 named colours, hues are spread by the golden angle as #rrggbb, so
    any number of participants gets distinct colours.
    """
    taken = {c for c in requested if c}
    pool = [c for c in _AUTO_ORDER if c not in taken]
    out: list[str] = []
    hue = 0.0
    for wanted in requested:
        if wanted:
            out.append(wanted)
            continue
        if pool:
            out.append(pool.pop(0))
            continue
        while True:
            hue = (hue + 0.618033988749895) % 1.0
            r, g, b = (round(x * 255) for x in colorsys.hsv_to_rgb(hue, 0.55, 1.0))
            spec = f"#{r:02x}{g:02x}{b:02x}"
            if spec not in taken:
                break
        taken.add(spec)
        out.append(spec)
    return out


def color_code(spec: str) -> str:
    """The ANSI code for a colour spec (a name from personas.COLOR_NAMES or #rrggbb)."""
    return _hex_code(spec) if spec.startswith("#") else _NAMED[spec]


def wants_color(out: TextIO, flag: bool | None, env: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never with --no-color or NO_COLOR set."""
    env = os.environ if env is None else env
    if flag is False or env.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _same_destination(a: TextIO, b: TextIO) -> bool:
    """Do two streams end up in the same place (one terminal, one file, one pipe)?"""
    if a is b:
        return True
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class Display:
    """Shows the discussion as it happens.

    stdout carries the discussion; stderr carries notices (hidden with quiet), debug
    lines (only with verbose) and the result line (always).
    """

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        color: bool | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = wants_color(self.out, color)
        self.quiet = quiet
        self.verbose = verbose
        self._codes: dict[str, str] = {}
        self._sanitizer = StreamSanitizer()
        self._in_turn = False
        # Where a notice would land on the speaker's line, it breaks the line first and
        # the speaker's prefix is shown again before the turn goes on.
        self._shared = _same_destination(self.out, self.err)
        self._prefix = ""  # the current turn's name tag (and note), as written
        self._line_open = False  # stdout has a line without its newline yet
        self._reprefix = False  # a notice broke the current turn's line

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{Style.RESET_ALL}" if self.color and code else text

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _show(self, text: str) -> None:
        """Write part of the current turn, after its prefix again if a notice broke it."""
        if self._reprefix:
            text = text.lstrip()
            if not text:
                return
            text = self._prefix + text
            self._reprefix = False
        self._write(text)
        self._line_open = not text.endswith("\n")

    def _to_err(self, text: str) -> None:
        """A dim line on stderr, never on a speaker's line."""
        if self._shared:
            if self._line_open:
                self._write("\n")
                self._line_open = False
            if self._in_turn:
                self._reprefix = True
        print(self._paint(sanitize(text), Style.DIM), file=self.err, flush=True)

    def set_colors(self, names: Sequence[str], specs: Sequence[str]) -> None:
        """Give each participant its colour."""
        self._codes = {n: color_code(s) for n, s in zip(names, specs, strict=False)}

    def notice(self, text: str) -> None:
        """A one-line message about the run itself (to stderr; not when quiet)."""
        if not self.quiet:
            self._to_err(text)

    def result(self, text: str) -> None:
        """The run's result line (to stderr, even when quiet)."""
        self._to_err(text)

    def debug(self, text: str) -> None:
        """A detail only -v asks for (to stderr)."""
        if self.verbose:
            self._to_err(text)

    def moderator(self, text: str) -> None:
        """A line from the moderator."""
        if not self.quiet:
            self._write(self._paint(f"Moderator: {sanitize(text)}", Style.BRIGHT) + "\n\n")

    def introduction(self, name: str, text: str) -> None:
        """A persona's introduction (from its file, no model call)."""
        if not self.quiet:
            tag = self._paint(f"{name}:", self._codes.get(name, ""))
            self._write(f"{tag} {sanitize(text)}\n\n")

    def seat(self, name: str, lines: Sequence[str]) -> str:
        """Show a human participant what their turn is about (even when quiet); return
        their input prompt: the name tag in its colour."""
        for line in lines:
            self._write(self._paint(sanitize(line), Style.DIM) + "\n")
        return self._paint(f"{name}:", self._codes.get(name, "") + Style.BRIGHT) + " "

    def begin_turn(self, name: str, note: str = "") -> None:
        """Start a turn: the speaker's name tag in its colour."""
        self._sanitizer = StreamSanitizer()
        self._in_turn = True
        self._reprefix = False
        tag = self._paint(f"{name}:", self._codes.get(name, "") + Style.BRIGHT)
        extra = self._paint(f" ({note})", Style.DIM) if note else ""
        self._prefix = f"{tag}{extra} "
        if not self.quiet:
            self._write(self._prefix)
            self._line_open = True

    def text(self, delta: str) -> None:
        """Show part of a reply as it arrives."""
        safe = self._sanitizer.feed(delta)
        if safe and not self.quiet:
            self._show(safe)

    def end_turn(self, footer: str = "") -> None:
        """Finish a turn, with an optional dim footer (tokens, time)."""
        rest = self._sanitizer.flush()
        if not self.quiet:
            if rest:
                self._show(rest)
            line = self._paint(f"  [{footer}]", Style.DIM) if footer and self.verbose else ""
            if self._line_open:
                self._write(f"{line}\n\n")
            else:  # a notice ended the line: the footer, if any, gets its own
                self._write(f"{line}\n\n" if line else "\n")
        self._line_open = self._in_turn = self._reprefix = False

    def abort_turn(self, reason: str = "") -> None:
        """A turn's attempt is dropped: mark what was shown of it, and say why if given."""
        self._sanitizer = StreamSanitizer()
        if self._in_turn and not self.quiet:
            # Its text is already on screen: say it does not count (a re-ask follows).
            mark = self._paint("[discarded]", Style.DIM)
            self._write(f"{' ' if self._line_open else ''}{mark}\n")
        elif self._line_open:
            self._write("\n")
        self._line_open = self._in_turn = self._reprefix = False
        if reason:
            self.notice(f"roundtable: {reason}")

    def prompt(self, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> None:
        """With -v: the exact request about to be sent (never the API key)."""
        if not self.verbose:
            return
        self._to_err(f"--- request {json.dumps(dict(params))}")
        for m in messages:
            self.err.write(self._paint(f"[{m['role']}]", Style.DIM) + "\n")
            self.err.write(sanitize(str(m["content"])) + "\n")
        self.err.write(self._paint("--- end of request", Style.DIM) + "\n")
        self.err.flush()
