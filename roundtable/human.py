"""A human seat: a person at the terminal takes turns like any participant.

Reading what they type (several lines, ended by an empty line or Ctrl-D; or paragraphs
from a file for scripted sessions), the commands (/pass, /ask NAME, /quit), the optional
timeout, and cleaning the text like model output. The run loop calls `Seat.take` instead
of asking a model when the speaker is human.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TextIO

from ._validate import read_text
from .errors import InputError
from .moderator import Phase, TurnPlan
from .personas import Persona
from .prompts import Prompts
from .sanitize import sanitize
from .table import Table
from .transcript import Turn

try:
    import termios
except ImportError:  # pragma: no cover - not on POSIX: no echo control
    termios = None  # type: ignore[assignment]

MAX_CHARS = 4000  # a turn longer than this is cut (about as long as a long model reply x 5)
HELP = "/pass skips your turn, /ask NAME hands the floor to NAME, /quit stops (resume later)"
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")


class Quit(KeyboardInterrupt):
    """/quit: stop the run as Ctrl-C does (recorded as interrupted, resumable)."""


def humans(personas: Sequence[Persona]) -> list[str]:
    """The names of the human participants, in file order."""
    return [p.name for p in personas if p.human]


def has_human(table: Table) -> bool:
    """True when a person takes a seat at this table (a study must refuse it)."""
    return any(p.human for p in table.personas)


def seat(table: Table, name: str | None, full_name: str | None = None) -> Table:
    """The table with a human seat for `--human NAME` added last (checked like a file's)."""
    if name is None:
        if full_name is not None:
            raise InputError("--human-full-name: give the seat a name with --human NAME too")
        return check(table)
    data = {"name": name, "full_name": full_name or name, "human": True}
    person = Persona.from_dict(data, source="--human")
    taken = [p for p in table.personas if p.name.casefold() == person.name.casefold()]
    if taken:
        raise InputError(
            f"--human: {name!r} is already a participant ({taken[0].source}); choose another name"
        )
    personas = (*table.personas, person)
    prompts = Prompts(table.directory, table.task, personas)  # the participant list names them
    return check(replace(table, personas=personas, prompts=prompts))


def check(table: Table) -> Table:
    """A table needs at least one model participant: someone has to answer."""
    if all(p.human for p in table.personas):
        raise InputError(
            f"{table.directory / 'participants'}: every participant is human; a roundtable "
            "needs at least one model persona"
        )
    return table


@dataclass(frozen=True)
class Said:
    """What a person did with their turn."""

    text: str
    finish_reason: str  # human (spoke), pass, timeout, or length (cut to MAX_CHARS)
    handoff: str | None = None  # /ask NAME: the participant given the floor
    seconds: float = 0.0

    def turn(
        self, plan: TurnPlan, entry_tokens: tuple[int | None, ...], selection: str | None
    ) -> Turn:
        """The transcript record of this turn."""
        return Turn(
            index=plan.index, speaker=plan.speaker, phase=plan.phase.value, topic=plan.topic,
            text=self.text, temperature=0.0, prompt_tokens=0, completion_tokens=0,
            latency_s=round(self.seconds, 4), finish_reason=self.finish_reason,
            tokens_source="none", model=None, attempts=0, entry_tokens=entry_tokens,
            chosen_by=plan.reason, selection=selection, human=True, handoff=self.handoff,
        )  # fmt: skip


class Retry(Exception):
    """The input cannot be taken as it is (a mistyped command); say why and ask again."""


def clean(raw: str) -> str:
    """Typed text as a turn: control characters and escape sequences removed, lines
    trimmed, blank lines at the ends dropped."""
    text = sanitize(raw.replace("\r\n", "\n").replace("\r", "\n")).replace("\t", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def parse(raw: str, speaker: str, lookup: Mapping[str, str]) -> Said:
    """A turn from what was typed; the last line may be a command. `lookup` maps each
    participant's names (name, full name) to their name. Raises Quit or Retry."""
    text = clean(raw)
    lines = text.split("\n")
    command = lines[-1] if lines[-1].startswith("/") else ""
    if command:
        text = "\n".join(lines[:-1]).strip()
    word, _, rest = command.partition(" ")
    word, rest = word.lower(), rest.strip()
    if word in ("/quit", "/pass") and (text or rest):
        raise Retry(f"{word} takes nothing else; type it alone on its line")
    if word == "/quit":
        raise Quit
    if word == "/pass" or (not text and not word):
        return Said("", "pass")
    handoff = None
    if word == "/ask":
        handoff = _participant(rest.lstrip("@"), speaker, lookup)
    elif word:
        raise Retry(f"{word}: unknown command; {HELP}")
    if len(text) > MAX_CHARS:
        return Said(text[:MAX_CHARS].rstrip(), "length", handoff)
    return Said(text, "human" if text else "pass", handoff)


def _participant(name: str, speaker: str, lookup: Mapping[str, str]) -> str:
    folded = {alias.casefold(): real for alias, real in lookup.items()}
    others = sorted({n for n in lookup.values() if n != speaker})
    found = folded.get(name.strip(" .,!?").casefold())
    if not name:
        raise Retry(f"/ask needs a name: one of {', '.join(others)}")
    if found is None or found == speaker:
        raise Retry(f"/ask {name}: not another participant; ask one of {', '.join(others)}")
    return found


class Source(Protocol):
    """Where a person's turns come from: the terminal or a file."""

    typed: bool  # the words appear on screen as typed (a terminal echoes them)

    def read(self, prompt: str, timeout: float | None) -> str | None:
        """One turn as typed (None: nothing typed within `timeout` seconds)."""
        ...


class Script:
    """Turns from a file (--human-input): one per paragraph, separated by blank lines."""

    typed = False

    def __init__(self, path: Path) -> None:
        self.path = path
        text = read_text(path, "--human-input file")
        self._turns: Iterator[str] = iter(
            p.strip() for p in _PARAGRAPHS.split(text.replace("\r\n", "\n")) if p.strip()
        )

    def read(self, prompt: str, timeout: float | None) -> str | None:
        """The next paragraph; when the file has no more, the run stops as with /quit."""
        for paragraph in self._turns:
            return paragraph
        raise Quit(f"{self.path}: no more turns")


class Terminal:
    """Turns typed at a terminal: lines until an empty one (or Ctrl-D)."""

    typed = True

    def __init__(self, fd: int = 0, out: TextIO | None = None) -> None:
        self.fd = fd
        self.out = out or sys.stdout
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # what a read returned past the end of a line

    def _line(self, deadline: float | None) -> str | None:
        """One line with its newline; "" at Ctrl-D (end of file); None past the deadline."""
        while "\n" not in self._pending:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                    return None
            data = os.read(self.fd, 4096)
            if not data:  # Ctrl-D: what was typed so far, then end of input
                line, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
                return line
            self._pending += self._decoder.decode(data)
        line, _, self._pending = self._pending.partition("\n")
        return line + "\n"

    def read(self, prompt: str, timeout: float | None) -> str | None:
        """Lines after `prompt` until an empty line, a command line or Ctrl-D; None if
        nothing is typed within `timeout` seconds (the timeout holds only until the first
        line)."""
        more = " " * _width(prompt)
        lines: list[str] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        with _echo_controls_visibly(self.fd):
            self._show(prompt)
            while True:
                line = self._line(deadline if not lines else None)
                if line is None:
                    self._show("\n")
                    return None
                if line == "":  # Ctrl-D: the turn ends here
                    self._show("\n\n")
                    return "\n".join(lines)
                if line.strip() == "" and lines:
                    return "\n".join(lines)
                if line.strip():
                    lines.append(line.rstrip("\n"))
                    if line.startswith("/"):  # a command ends the turn at once
                        self._show("\n")
                        return "\n".join(lines)
                self._show(more)

    def _show(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _width(prompt: str) -> int:
    return len(re.sub(r"\x1b\[[0-9;]*m", "", prompt))


@contextmanager
def _echo_controls_visibly(fd: int) -> Iterator[None]:
    # A terminal echoes what is typed itself; with ECHOCTL it shows an Escape as ^[
    # instead of sending it back raw, so a typed escape sequence cannot recolour or move
    # anything on screen. Set it for the prompt, and restore the terminal after.
    if termios is None or not hasattr(termios, "ECHOCTL") or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    wanted = list(saved)
    wanted[3] |= termios.ECHOCTL
    termios.tcsetattr(fd, termios.TCSANOW, wanted)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def open_source(
    table: Table, input_file: Path | None, stdin: TextIO | None = None
) -> Source | None:
    """Where the table's human turns come from, checked at start: --human-input FILE, or
    the terminal; None when nobody at the table is human."""
    stdin = stdin or sys.stdin
    people = humans(table.personas)
    if not people:
        if input_file is not None:
            raise InputError("--human-input: nobody at this table is human; add --human NAME")
        return None
    if input_file is not None:
        return Script(input_file)
    try:
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        fd = -1
    if fd < 0 or not os.isatty(fd):
        raise InputError(
            f"standard input: not a terminal, so {people[0]} (a human participant) cannot "
            "type; run roundtable in a terminal, or give the turns with --human-input FILE"
        )
    return Terminal(fd)


class SeatDisplay(Protocol):
    """What a seat shows (a subset of display.Display)."""

    def seat(self, name: str, lines: Sequence[str]) -> str: ...
    def notice(self, text: str) -> None: ...
    def result(self, text: str) -> None: ...
    def begin_turn(self, name: str, note: str = "") -> None: ...
    def text(self, delta: str) -> None: ...
    def end_turn(self, footer: str = "") -> None: ...


class Seat:
    """Asks a human participant for their turns, from a terminal or a file."""

    def __init__(self, source: Source, *, timeout: float | None = None) -> None:
        self.source = source
        self.timeout = timeout
        self._helped = False

    def _header(self, plan: TurnPlan, task_summary: str) -> list[str]:
        name = plan.speaker
        if plan.phase is Phase.SUMMARY:
            lines = [f"{name}, please summarise the discussion.", task_summary]
        elif plan.phase is Phase.WRAP_UP:
            lines = [f"{name}, your closing remarks: your main recommendation and one thing "
                     "you learned from the others."]  # fmt: skip
        else:
            lines = [f"{name}, your turn. The question: {plan.topic}"]
            if plan.ask:
                lines.append(f"After making your point, ask {plan.ask} for their view.")
        if not self._helped:
            self._helped = True
            lines.append(f"(Several lines; an empty line or Ctrl-D ends your turn. {HELP}.)")
        return [line for line in lines if line]

    def take(
        self,
        plan: TurnPlan,
        display: SeatDisplay,
        lookup: Mapping[str, str],
        task_summary: str = "",
    ) -> Said:
        """Show the question (and any nudge), read the turn, and say what became of it."""
        started = time.monotonic()
        prompt = display.seat(plan.speaker, self._header(plan, task_summary))
        while True:
            try:
                raw = self.source.read(prompt, self.timeout)
            except Quit as exc:
                if exc.args:  # the file ran out: said even when quiet
                    display.result(f"roundtable: {exc.args[0]}; stopping")
                raise
            if raw is None:
                display.notice(f"roundtable: nothing typed in {self.timeout:g} s; "
                               f"{plan.speaker} passes")  # fmt: skip
                said = Said("", "timeout")
                break
            try:
                said = parse(raw, plan.speaker, lookup)
            except Retry as exc:
                if not self.source.typed:
                    raise InputError(f"--human-input: {exc}") from None
                display.notice(f"roundtable: {exc}")
                continue
            break
        said = replace(said, seconds=time.monotonic() - started)
        if not self.source.typed:  # a scripted turn is shown as if typed
            display.begin_turn(plan.speaker)
            display.text(said.text)
            display.end_turn()
        if said.finish_reason == "length":
            display.notice(f"roundtable: your turn was cut to {MAX_CHARS} characters")
        if raw and sanitize(raw) != raw:
            display.notice("roundtable: control characters were removed from your turn")
        if said.handoff:
            display.notice(f"roundtable: {plan.speaker} hands the floor to {said.handoff}")
        elif not said.text:
            display.notice(f"roundtable: {plan.speaker} passes")
        return said
