from __future__ import annotations

import pytest

from roundtable.budget import (
    ADDED_TOKENS,
    Budget,
    Entry,
    Fold,
    SharedTranscript,
    extract,
    most_tokens,
)
from roundtable.errors import InputError


def words(text: str) -> int:
    return len(text.split())


def shared() -> SharedTranscript:
    return SharedTranscript(lambda lines: "Recap:\n" + "\n".join(lines))


def add(st: SharedTranscript, speaker: str, text: str) -> None:
    rendered = f"{speaker}: {text}"
    st.add(Entry(speaker, text, "turn", rendered, words(rendered)))


def test_entries_append_and_count_once():
    st = shared()
    add(st, "Ann", "one two three")
    add(st, "Bob", "four")
    assert st.text == "Ann: one two three\n\nBob: four"
    assert st.tokens == 4 + 2 + 2


def test_fold_keeps_newest_replaces_oldest_with_a_recap_within_target():
    st = shared()
    for i in range(20):
        add(
            st, "Ann" if i % 2 else "Bob", f"Sentence number {i} is here. And more words follow it."
        )
    before = st.tokens
    folded = st.fold(before // 2, before, words)
    assert folded > 0 and st.tokens <= before // 2 and st.folds == 1
    assert st.text.startswith("Recap:\nBob: Sentence number 0 is here.")
    assert st.text.endswith("Ann: Sentence number 19 is here. And more words follow it.")
    assert st.fold(10_000, 100, words) == 0  # nothing to do: no change
    assert st.folds == 1


def test_recap_stays_within_its_budget_over_many_folds():
    st = shared()
    for i in range(200):
        add(st, "Ann", f"Point {i} matters a lot. Details.")
        if st.tokens > 120:
            st.fold(60, 30, words)
            assert st.recap_tokens <= 30 and st.tokens <= 120
    assert st.folds > 5


def test_model_summary_replaces_the_recap():
    st = shared()
    for i in range(10):
        add(st, "Ann", f"Point {i}.")
    fold = st.plan_fold(10, 50, words, lambda recap, folded: f"{len(folded)} points made")
    assert fold is not None and fold.by == "model"
    st.apply(fold)
    assert st.recap_lines == [f"{st.folded_entries} points made"]


def test_a_fold_event_read_back_rebuilds_the_same_text():
    live, again = shared(), shared()
    for st in (live, again):
        for i in range(12):
            add(st, "Ann", f"Point {i} is made here.")
    fold = live.plan_fold(20, 40, words, before_turn=7, window=512)
    assert fold is not None
    live.apply(fold)
    record = fold.to_dict()
    assert record["type"] == "fold" and record["before_turn"] == 7 and record["window"] == 512
    again.apply(Fold.from_dict(record))
    assert (again.text, again.tokens, again.recap_lines) == (
        live.text,
        live.tokens,
        live.recap_lines,
    )


def test_extract_takes_the_first_sentence_and_shortens_it():
    assert extract(Entry("Ann", "First one. Second.", "turn", "", 0)) == "Ann: First one."
    long = Entry("Ann", " ".join(["word"] * 50), "turn", "", 0)
    assert extract(long, words=5) == "Ann: word word word word word ..."


class Counting:
    """A client stand-in that counts words and remembers what it counted."""

    def __init__(self, per_word: int) -> None:
        self.per_word, self.seen = per_word, []

    def count_tokens(self, text: str) -> int:
        self.seen.append(text)
        return self.per_word * words(text)


def budget(clients, table, window=None):
    b = Budget(
        clients=clients,
        summary_client=table,
        render_entry=lambda s, t, k: f"{s}: {t}",
        render_recap="\n".join,
        system="System text.",
        max_tokens=50,
    )
    b.window = window
    return b


def test_each_persona_is_counted_by_its_own_endpoint_and_the_moderator_by_the_tables():
    ann, bob, table = Counting(1), Counting(10), Counting(100)
    b = budget({"Ann": ann, "Bob": bob}, table)
    assert b.entry("Ann", "two words", "turn").tokens == 3
    assert b.entry("Bob", "two words", "turn").tokens == 30
    assert b.entry("Moderator", "two words", "moderator").tokens == 300
    assert (ann.seen, bob.seen, table.seen) == (["Ann: two words"], ["Bob: two words"],
                                                ["Moderator: two words"])  # fmt: skip
    assert b.entry("Ann", "known", "turn", tokens=7).tokens == 7 and len(ann.seen) == 1


@pytest.mark.parametrize("source", ["participants/role2.json", None], ids=["file", "name"])
def test_a_persona_prompt_bigger_than_the_window_names_its_file_and_the_fix(source):
    b = budget({"Ann": Counting(1)}, Counting(1), window=200)
    with pytest.raises(InputError) as info:
        b.fit("Ann", "word " * 300, turn=0, source=source)
    message = str(info.value)
    assert message.startswith(f"{source or 'Ann'}: this persona's prompt")
    assert "shorten the prompt" in message and "raise --context-window" in message


class Tokenizer(Counting):
    """A stand-in whose counts are requests to a server's tokenizer (so they can wait)."""

    counts_by_request = True


def test_most_tokens_bounds_any_count_by_the_bytes():
    assert most_tokens("abc") == 3 + ADDED_TOKENS
    assert most_tokens("é€😀") == 2 + 3 + 4 + ADDED_TOKENS  # UTF-8 bytes, not characters
    entry = Entry("Ann", "x", "turn", "Ann: hello", None)
    assert entry.most == most_tokens("Ann: hello")
    assert Entry("Ann", "x", "turn", "Ann: hello", 2).most == 2


def test_far_from_the_window_entries_wait_and_the_prompt_is_not_counted():
    ann, table = Tokenizer(1), Tokenizer(1)
    b = budget({"Ann": ann}, table, window=4096)
    for i in range(5):
        assert b.entry("Ann", f"point {i} is made", "turn").tokens is None
    room = b.fit("Ann", "Your turn, Ann.", turn=5)
    # Only the system text was counted (once per endpoint); no entry, not the turn's part.
    assert (ann.seen, table.seen) == (["System text."], [])
    assert room.prompt_tokens is None and not b.shared.counted
    b.fit("Ann", "Your turn again, Ann.", turn=6)
    assert ann.seen == ["System text."]


def test_near_the_window_every_entry_is_counted_once_and_folds_use_the_counts():
    ann, table = Tokenizer(1), Tokenizer(1)
    b = budget({"Ann": ann}, table, window=420)
    texts = [f"point {i} is made with several more words" for i in range(40)]
    for text in texts[:20]:
        b.entry("Ann", text, "turn")
    assert ann.seen == []
    # The bound (about 40 bytes each, 800 in all) is over the room (~280) but the counts
    # (9 words each, 220 in all) fit: everything is counted, nothing is folded.
    room = b.fit("Ann", "Your turn.", turn=20)
    assert b.shared.counted and b.shared.folds == 0
    assert ann.seen == ["System text.", "Your turn.", *(f"Ann: {t}" for t in texts[:20])]
    assert room.prompt_tokens == words("System text.") + words("Your turn.") + 16 + b.shared.tokens
    seen = len(ann.seen)
    for text in texts[20:]:
        b.entry("Ann", text, "turn")
        b.fit("Ann", "Your turn.", turn=21)
    # Past the bound, each new entry is counted once (at a fit where the bound no longer
    # fits), in order; folds come by the counts.
    assert ann.seen[seen:] == [f"Ann: {t}" for t in texts[20:]]
    assert b.shared.folds >= 1 and b.shared.counted
    assert b.shared.tokens <= 420 - 50 - 16 - (8 + 420 // 50) - words("System text. Your turn.")


def test_a_replayed_entry_the_run_had_not_counted_is_not_counted_by_the_replay():
    ann, table = Tokenizer(1), Tokenizer(1)
    b = budget({"Ann": ann}, table)
    assert b.entry("Ann", "said before", "turn", None, later=True).tokens is None
    assert b.entry("Moderator", "a line", "moderator", 4, later=True).tokens == 4
    assert (ann.seen, table.seen) == ([], [])
    # Without `later` (a transcript from before counts were recorded) a stand-in that
    # cannot wait is counted at once.
    plain = Counting(1)
    assert budget({"Ann": plain}, plain).entry("Ann", "old", "turn").tokens == 2
