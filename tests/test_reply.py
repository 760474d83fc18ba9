from __future__ import annotations

import pytest

from roundtable.reply import ReplyFilter

OWN = ("Alice", "Alice Smith")
OTHERS = ("Bob", "Moderator", "C++ Dev")


def clean(text: str, size: int) -> tuple[str, str, bool]:
    f = ReplyFilter(OWN, OTHERS)
    shown = "".join(f.feed(text[i : i + size]) for i in range(0, len(text), size)) + f.finish()
    return shown, f.text, f.cut


@pytest.mark.parametrize(
    "raw,expected,cut",
    [
        ("Plain answer.", "Plain answer.", False),
        ("Alice: Hello there.", "Hello there.", False),
        ("  **Alice:** Bold tag.", "Bold tag.", False),
        ("Alice (Alice Smith): Long tag.", "Long tag.", False),
        ("Alice Smith:\nOn a new line.", "On a new line.", False),
        ("I agree.\nBob: I also agree.", "I agree.", True),
        ("I agree.\n\n**Moderator:** next", "I agree.", True),
        ("Over to C++ Dev.\nC++ Dev: thanks", "Over to C++ Dev.", True),
        ("Bob: speaking as Bob from the start", "", True),
        ("First.\nAlice: still me.", "First.\nstill me.", False),
        (
            "Bob, what do you think?\nAnd you, Bobby?",
            "Bob, what do you think?\nAnd you, Bobby?",
            False,
        ),
    ],
    ids=[
        "plain",
        "own-tag",
        "bold-tag",
        "paren-tag",
        "full-name",
        "other-cut",
        "moderator-cut",
        "metachar-name",
        "other-at-start",
        "own-again",
        "mention-not-tag",
    ],
)
@pytest.mark.parametrize("size", [1, 3, 1000], ids=["1", "3", "whole"])
def test_reply_filter(raw, expected, cut, size):
    shown, text, was_cut = clean(raw, size)
    assert (shown, text, was_cut) == (expected, expected, cut)
