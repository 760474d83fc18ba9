from __future__ import annotations

import re

import pytest

from roundtable.reply import ReplyFilter

OWN = ("Alice", "Alice Smith")
OTHERS = ("Bob", "Moderator", "C++ Dev")


def clean(text: str, size: int) -> tuple[str, str, bool]:
    f = ReplyFilter(OWN, OTHERS)
    shown = "".join(f.feed(text[i : i + size]) for i in range(0, len(text), size)) + f.finish()
    return shown, f.text, f.done


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


@pytest.mark.parametrize(
    "raw,expected",
    [
        (
            "We need trees. We need shade. We need trees. We need trees.",
            "We need trees. We need shade.",
        ),
        (
            "I agree. I agree. The plan is good.",
            "I agree. I agree. The plan is good.",
        ),  # too short to count
        (
            "The city must act now! Then fund it.\nThe city must act now! more",
            "The city must act now! Then fund it.",
        ),
        ("I think so.\nI think so.", "I think so."),
        ("We need more trees.\n   We need more trees. And", "We need more trees."),
        ("We need more trees.\n- We need more trees.", "We need more trees."),
        ("1. Plant more trees.\n2. Plant more trees.\n", "1. Plant more trees."),
        ("> Plant trees now\n\n> Plant trees now\nok", "> Plant trees now"),
        ("1. Fund cooling centres.\n2. Plant trees.", "1. Fund cooling centres.\n2. Plant trees."),
    ],
    ids=[
        "loop",
        "short-ok",
        "across-lines",
        "new-line",
        "indented",
        "bullet",
        "numbered",
        "unpunctuated-lines",
        "list-ok",
    ],
)
@pytest.mark.parametrize("size", [1, 4, 1000], ids=["1", "4", "whole"])
def test_a_repeated_sentence_ends_the_reply(raw, expected, size):
    shown, text, _ = clean(raw, size)
    assert shown == text == expected


def test_first_words_are_not_held_unless_they_may_be_a_tag():
    f = ReplyFilter(OWN, OTHERS)
    assert f.feed("I") == "I"  # cannot become a name tag: shown at once
    g = ReplyFilter(OWN, OTHERS)
    assert g.feed("Ali") == ""  # may become "Alice:", so it waits...
    assert g.feed("ce, you") == "you"  # ...until it cannot (its own name as a vocative goes)
    h = ReplyFilter(OWN, OTHERS)
    assert h.feed("Bo") == "" and h.feed("b, I disagree") == "Bob, I disagree"
    assert h.reason is None


def test_another_participants_full_name_on_its_own_line_ends_the_reply():
    f = ReplyFilter(("Chen", "Chen Wei, nurse"), ("Dara",), ("Dara Lindqvist, scientist",))
    shown = (
        f.feed("Chen Wei, nurse\nI think so.\nDara Lindqvist, scientist\nI disagree.") + f.finish()
    )
    assert shown == f.text == "I think so." and f.reason == "impersonation"


def test_salvage_keeps_words_written_under_someone_elses_tag():
    f = ReplyFilter(OWN, OTHERS)
    f.feed("Bob: Trees first. Then shade.\nModerator: Thanks.")
    f.finish()
    assert f.text == "" and f.salvage() == "Trees first. Then shade."


def stream(f: ReplyFilter, text: str) -> tuple[int, int]:
    """Feed one word per delta, as a server streams, and stop reading once f is done."""
    deltas = re.findall(r"\s*\S+", text)
    read = 0
    for read, delta in enumerate(deltas, 1):  # noqa: B007
        f.feed(delta)
        if f.done:
            break
    f.finish()
    return read, len(deltas)


@pytest.mark.parametrize(
    "raw,salvaged",
    [
        (
            "Bob: Trees first, then shade for all. Then cooling centres open late. And more.",
            "Trees first, then shade for all.",
        ),
        ("**Bob:** Trees first! Shade next, for all of us.", "Trees first!"),
        ("Bob: Plant trees now\nModerator: Thanks, Bob. Next question.", "Plant trees now"),
    ],
    ids=["sentence", "bold-tag", "next-tag"],
)
def test_salvage_keeps_whole_sentences_when_streaming(raw, salvaged):
    f = ReplyFilter(OWN, OTHERS)
    read, total = stream(f, raw)
    assert (f.text, f.reason, f.salvage()) == ("", "impersonation", salvaged)
    assert read < total  # the stream was still closed early


def test_salvage_reads_a_bounded_amount_when_no_sentence_ends():
    words = [f"w{i}" for i in range(400)]
    f = ReplyFilter(OWN, OTHERS)
    read, total = stream(f, "Bob: " + " ".join(words))
    assert f.done and read < total and f.salvage() == " ".join(words[: read - 1])


def test_a_cut_after_own_words_closes_the_stream_at_once():
    f = ReplyFilter(OWN, OTHERS)
    assert stream(f, "I agree.\nBob: Me too. And I have much more to say.") == (3, 12)
    assert f.text == "I agree." and f.reason == "impersonation"


def test_salvage_of_nested_tags_does_not_recurse():
    # SmolLM2 wrote a tag after a tag after a tag: the salvage filter must not salvage again.
    f = ReplyFilter(["Amara", "Amara Okafor"], ["Ben", "Chen", "Moderator"], ["Ben Hartley"])
    for word in ("Ben Hartley, economist, says: We need shade now. Trees help.").split(" "):
        f.feed(word + " ")
    f.finish()
    assert f.reason == "impersonation" and len(f.salvage()) < 2000


@pytest.mark.parametrize(
    "deltas,expected",
    [
        (["Amara", ", I'm glad", " to start."], "I'm glad to start."),
        (["Amara, ", "we need shade."], "we need shade."),
        (["Amara is my name."], "Amara is my name."),
    ],
    ids=["split", "whole", "not-a-vocative"],
)
def test_a_reply_addressing_its_own_speaker_drops_the_vocative(deltas, expected):
    f = ReplyFilter(["Amara", "Amara Okafor"], ["Ben", "Moderator"])
    shown = "".join(f.feed(d) for d in deltas) + f.finish()
    assert shown == expected == f.text


def test_a_vocative_split_after_the_comma_is_still_dropped():
    f = ReplyFilter(["Amara", "Amara Okafor"], ["Ben", "Moderator"])
    assert f.feed("Amara,") == ""  # may still be "Amara, " + words: held
    assert f.feed(" I'm glad.") + f.finish() == "I'm glad."
