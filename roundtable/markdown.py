"""transcript.md: a readable Markdown rendering of a transcript's records.

Model text (and table text) is untrusted: it is cleaned of control sequences and its
Markdown is escaped, so the file shows the words as written and no link, heading, HTML
or code block the model wrote comes alive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .sanitize import sanitize

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Characters with a meaning anywhere in a line (emphasis, code, links, tables, math, HTML).
_SPECIAL = re.compile(r"[&<>\\`*_\[\]|~$]")
# Line starts that would make a heading, list, or setext underline; the number of an
# ordered list ("1." / "1)") keeps its digits and loses its punctuation's meaning.
_LINE_START = re.compile(r"[#+=-]|\d+(?=[.)])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SECTIONS = {"wrap_up": "Wrap-up", "summary": "Summary"}


def escape(text: str) -> str:
    """One line of untrusted text as Markdown that renders literally."""
    line = _SPECIAL.sub(lambda m: _HTML.get(m[0], "\\" + m[0]), sanitize(text).strip())
    start = _LINE_START.match(line)
    if not start:
        return line
    if start[0][0].isdigit():
        return f"{line[: start.end()]}\\{line[start.end() :]}"
    return "\\" + line


def _paragraphs(text: str) -> list[str]:
    """Untrusted text as escaped paragraphs, its line breaks kept as hard breaks."""
    clean = sanitize(text).replace("\r\n", "\n").strip()
    out = []
    for para in _PARAGRAPH_BREAK.split(clean):
        lines = [escape(line) for line in para.split("\n") if line.strip()]
        if lines:
            out.append("  \n".join(lines))  # two spaces: a hard line break
    return out


def _said(speaker: str, text: str, quote: bool = False, silent: str = "no reply") -> list[str]:
    """A speaker's words: the name in bold before the first paragraph, then a blank line;
    quoted (the moderator's) as one block quote; `silent` says what an empty turn was."""
    paragraphs = _paragraphs(text) or [f"_({silent})_"]
    paragraphs[0] = f"**{escape(speaker)}:** {paragraphs[0]}"
    out: list[str] = []
    for n, para in enumerate(paragraphs):
        if quote:
            out += [">"] if n else []
            out += [f"> {line}" for line in para.split("\n")]
        else:
            out += [para, ""]
    return out + [""] if quote else out


def _header(run: Mapping[str, Any]) -> list[str]:
    names = ", ".join(
        f"{escape(str(p.get('name', '?')))} ({escape(str(p.get('full_name', '?')))})"
        for p in run.get("participants", [])
    )
    offline = " (offline dummy)" if run.get("offline") else ""
    seed = run.get("settings", {}).get("seed")
    return [
        f"- started: {escape(str(run.get('started', '?')))}",
        f"- model: {escape(str(run.get('model', '?')))}{offline}",
        f"- seed: {'?' if seed is None else seed}",
        f"- participants: {names}",
        "",
    ]


def _heading(turn: Mapping[str, Any], phase: str | None, topic: str | None) -> str | None:
    """The section a turn opens, if it opens one: a new topic, the wrap-up, the summary."""
    if turn["phase"] in _SECTIONS:
        return f"## {_SECTIONS[turn['phase']]}" if turn["phase"] != phase else None
    if turn.get("topic") and turn["topic"] != topic:
        return f"## {escape(' '.join(str(turn['topic']).split()))}"
    return None


def _fold(record: Mapping[str, Any]) -> str:
    count = record.get("entries")
    what = (
        f"{count} earlier {'entry' if count == 1 else 'entries'}"
        if isinstance(count, int)
        else "earlier entries"
    )
    return f"_(Context folded here: {what} became a short recap in the models' prompt.)_"


def _end(record: Mapping[str, Any]) -> str:
    status = escape(str(record.get("status", "?")))
    error = record.get("error")
    return f"Run ended: {status}: {escape(str(error))}" if error else f"Run ended: {status}."


def to_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    """A readable Markdown rendering of a transcript's records."""
    run = next((r for r in records if r.get("type") == "run"), {})
    out = ["# Roundtable transcript", ""] + (_header(run) if run else [])
    phase: str | None = None
    topic: str | None = None
    # Where the moderator lines right before the next turn begin: a heading the turn
    # opens goes above the moderator's announcement of it.
    mark: int | None = None
    end: Mapping[str, Any] | None = None
    for r in records:
        kind = r.get("type")
        if kind == "entry" and r.get("kind") == "moderator":
            mark = len(out) if mark is None else mark
            out += _said(str(r.get("speaker") or "Moderator"), str(r.get("text", "")), quote=True)
        elif kind == "entry":
            mark = None
            out += _said(str(r.get("speaker", "?")), str(r.get("text", "")))
        elif kind == "turn":
            heading = _heading(r, phase, topic)
            if heading:
                at = len(out) if mark is None else mark
                out[at:at] = [heading, ""]
            mark = None
            phase, topic = r["phase"], r.get("topic")
            text = str(r.get("text", ""))
            handoff = f"hands the floor to {escape(str(r['handoff']))}" if r.get("handoff") else ""
            silent = handoff or ("passes" if r.get("human") else "no reply")
            out += _said(str(r["speaker"]), text, silent=silent)
            if handoff and text.strip():  # a person's /ask after their words
                out += [f"_({handoff})_", ""]
        elif kind == "fold":  # between an announcement and its turn: the mark stays
            out += [_fold(r), ""]
        elif kind == "resume":
            mark = None
            out += [f"— resumed here (turn {int(r.get('turns_done', 0)) + 1}) —", ""]
        elif kind == "end":
            end = r
    if end:
        out += ["---", "", _end(end), ""]
    return "\n".join(out)
