from __future__ import annotations

import pytest

from roundtable.markdown import escape, to_markdown

RUN = {
    "type": "run",
    "started": "2026-11-21T09:30:12+00:00",
    "model": "markov-dummy",
    "offline": True,
    "settings": {"seed": 7},
    "participants": [{"name": "Ann", "full_name": "Ann Ames"}, {"name": "Bo", "full_name": "Bo B"}],
}
HEADER = """# Roundtable transcript

- started: 2026-11-21T09:30:12+00:00
- model: markov-dummy (offline dummy)
- seed: 7
- participants: Ann (Ann Ames), Bo (Bo B)
"""


def turn(index: int, speaker: str, phase: str, topic: str | None, text: str) -> dict:
    return {"type": "turn", "index": index, "speaker": speaker, "phase": phase,
            "topic": topic, "text": text}  # fmt: skip


def say(kind: str, speaker: str, text: str) -> dict:
    return {"type": "entry", "kind": kind, "speaker": speaker, "text": text}


def test_an_older_transcript_renders_topics_phases_and_the_end():
    records = [
        RUN,
        turn(0, "Ann", "discussion", "Q1?", "Hi."),
        turn(1, "Bo", "discussion", "Q1?", "Hello."),
        turn(2, "Ann", "discussion", "Q2?", "Next."),
        turn(3, "Bo", "wrap_up", None, "Bye."),
        turn(4, "Ann", "summary", None, ""),
        {"type": "end", "status": "completed"},
    ]
    assert to_markdown(records) == HEADER + (
        "\n## Q1?\n\n**Ann:** Hi.\n\n**Bo:** Hello.\n\n## Q2?\n\n**Ann:** Next.\n\n"
        "## Wrap-up\n\n**Bo:** Bye.\n\n## Summary\n\n**Ann:** _(no reply)_\n\n"
        "---\n\nRun ended: completed.\n"
    )


def test_introductions_moderator_folds_resume_and_failure_are_shown():
    records = [
        RUN,
        say("moderator", "Moderator", "Welcome. Introductions first."),
        say("introduction", "Ann", "I'm Ann Ames."),
        say("introduction", "Bo", "I'm Bo."),
        say("moderator", "Moderator", "Our question now: Q1?"),
        {"type": "fold", "before_turn": 0, "entries": 3, "recap": "..."},
        turn(0, "Ann", "discussion", "Q1?", "Trees."),
        {"type": "end", "status": "interrupted"},
        {"type": "resume", "turns_done": 1, "models": {}},
        {"type": "fold", "before_turn": 1, "entries": 1, "recap": "..."},
        turn(1, "Bo", "discussion", "Q1?", "Shade."),
        {"type": "end", "status": "failed", "error": "http://h/v1: unreachable after 5 attempts"},
    ]
    assert to_markdown(records) == HEADER + (
        "\n> **Moderator:** Welcome. Introductions first.\n\n"
        "**Ann:** I'm Ann Ames.\n\n**Bo:** I'm Bo.\n\n"
        "## Q1?\n\n> **Moderator:** Our question now: Q1?\n\n"
        "_(Context folded here: 3 earlier entries became a short recap in the models' prompt.)_"
        "\n\n**Ann:** Trees.\n\n— resumed here (turn 2) —\n\n"
        "_(Context folded here: 1 earlier entry became a short recap in the models' prompt.)_"
        "\n\n**Bo:** Shade.\n\n"
        "---\n\nRun ended: failed: http://h/v1: unreachable after 5 attempts\n"
    )


def test_paragraphs_and_line_breaks_are_kept():
    # (the window-title sequence spans a line break: it goes whole, not line by line)
    text = "First line.\nSecond\x1b]0;ti\ntle\x07 line.\n\n\n  Next paragraph.\r\nIts end.  "
    assert to_markdown([turn(0, "Ann", "discussion", None, text)]) == (
        "# Roundtable transcript\n\n"
        "**Ann:** First line.  \nSecond line.\n\nNext paragraph.  \nIts end.\n"
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("# Title", r"\# Title"),
        ("*bold* and _it_", r"\*bold\* and \_it\_"),
        ("[x](javascript:alert(1))", r"\[x\](javascript:alert(1))"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("`code` ~~gone~~ $x$", r"\`code\` \~\~gone\~\~ \$x\$"),
        ("> quoted", "&gt; quoted"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("12. item", r"12\. item"),
        ("3) item", r"3\) item"),
        ("---", r"\---"),
        ("===", r"\==="),
        ("a | b", r"a \| b"),
        ("&amp; \\", r"&amp;amp; \\"),
        ("    code block", "code block"),
        ("red \x1b[31mtext\x1b]0;title\x07", "red text"),
        ("plain words, 3.5 percent.", "plain words, 3.5 percent."),
    ],
    ids=[
        "heading",
        "emphasis",
        "link",
        "html",
        "code-strike-math",
        "quote",
        "bullet",
        "plus",
        "ordered",
        "ordered-paren",
        "rule",
        "setext",
        "table",
        "entity-backslash",
        "indent",
        "control-sequences",
        "plain",
    ],
)
def test_model_markdown_is_escaped_to_render_literally(text, expected):
    assert escape(text) == expected
    body = to_markdown([turn(0, "Ann", "discussion", None, f"Hi.\n{text}")]).split("\n")[2:4]
    assert body == ["**Ann:** Hi.  ", expected]


def test_names_topics_and_errors_are_escaped_too():
    records = [
        {**RUN, "participants": [{"name": "A_b", "full_name": "<i>A</i>"}]},
        turn(0, "A_b", "discussion", "Why *now*?", "Ok."),
        {"type": "end", "status": "failed", "error": "bad [link](x)"},
    ]
    md = to_markdown(records)
    assert "- participants: A\\_b (&lt;i&gt;A&lt;/i&gt;)\n" in md
    assert "\n## Why \\*now\\*?\n\n**A\\_b:** Ok.\n" in md
    assert md.endswith("Run ended: failed: bad \\[link\\](x)\n")
