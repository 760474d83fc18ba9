from __future__ import annotations

import pytest

from roundtable.errors import InputError
from roundtable.task import load_task, parse_questions


def test_questions_skip_blanks_and_comments():
    assert parse_questions("# intro\n\n  First?  \n#Second?\nThird?\n\n") == ("First?", "Third?")


def test_example_task_loads(table):
    task = load_task(table / "task")
    assert len(task.questions) == 4 and "heat" in task.context


@pytest.mark.parametrize(
    "filename,content,message",
    [
        ("questions.txt", None, "task file not found"),
        ("questions.txt", "# only comments\n\n", "no questions; write one question per line"),
        ("context.txt", None, "task file not found"),
        ("context.txt", "   \n", "file is empty"),
        ("discuss_instructions.txt", "# what this file is for\n\n", "only # comments"),
        ("summarize_instructions.txt", b"\xfe\xff", "not valid UTF-8"),
    ],
    ids=[
        "questions-missing",
        "questions-empty",
        "context-missing",
        "context-blank",
        "only-comments",
        "non-utf8",
    ],
)
def test_broken_task_files(table, filename, content, message):
    path = table / "task" / filename
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputError) as exc:
        load_task(table / "task")
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_a_utf8_bom_is_not_text(table):
    for name in ("questions.txt", "context.txt"):
        path = table / "task" / name
        path.write_bytes(b"\xef\xbb\xbf" + b"# a comment, not a question\n" + path.read_bytes())
    task = load_task(table / "task")
    assert len(task.questions) == 4 and not task.questions[0].startswith(("\ufeff", "#"))
    assert "\ufeff" not in task.context and not task.context.startswith(("\ufeff", "#"))


def test_comment_lines_are_not_task_text(table):
    # Every task file takes # comment lines (roundtable init explains each file in them).
    path = table / "task" / "context.txt"
    path.write_text("# What everyone knows.\nThe city is hot.\n  # indented too\nIt has trees.\n")
    assert load_task(table / "task").context == "The city is hot.\nIt has trees."
