"""The task: shared context, instructions and the questions to discuss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._validate import read_text
from .errors import InputError

TASK_FILES = {
    "context": "context.txt",
    "discuss_instructions": "discuss_instructions.txt",
    "summarize_instructions": "summarize_instructions.txt",
}


@dataclass(frozen=True)
class Task:
    """What the roundtable talks about and how."""

    context: str
    discuss_instructions: str
    summarize_instructions: str
    questions: tuple[str, ...]


def parse_questions(text: str) -> tuple[str, ...]:
    """One question per line; blank lines and # comments are ignored."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def strip_comments(text: str) -> str:
    """The text without its comment lines (first non-blank character #), trimmed."""
    # Comments say what a file is for (roundtable init writes them); they are not sent.
    kept = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return "\n".join(kept).strip()


def load_task(directory: Path) -> Task:
    """Load task/ files; every file must exist and hold some text besides # comments."""
    if not directory.is_dir():
        raise InputError(f"{directory}: task directory not found")
    texts: dict[str, str] = {}
    for field, name in TASK_FILES.items():
        path = directory / name
        text = strip_comments(read_text(path, "task file"))
        if not text:
            raise InputError(
                f"{path}: file is empty (or only # comments); write the "
                f"{field.replace('_', ' ')} here"
            )
        texts[field] = text
    path = directory / "questions.txt"
    questions = parse_questions(read_text(path, "task file"))
    if not questions:
        raise InputError(f"{path}: no questions; write one question per line")
    return Task(questions=questions, **texts)
