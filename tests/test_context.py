from __future__ import annotations

from roundtable.context import SharedTranscript, extract


def words(text: str) -> int:
    return len(text.split())


def shared() -> SharedTranscript:
    return SharedTranscript(
        lambda s, t, k: f"{s}: {t}", lambda lines: "Recap:\n" + "\n".join(lines), words
    )


def test_entries_append_and_count_once():
    calls = []
    st = SharedTranscript(
        lambda s, t, k: f"{s}: {t}", lambda lines: "R", lambda t: calls.append(t) or words(t)
    )
    st.add("Ann", "one two three", "turn")
    st.add("Bob", "four", "turn")
    assert st.text == "Ann: one two three\n\nBob: four"
    assert st.tokens == 4 + 2 + 2 and len(calls) == 2


def test_fold_keeps_newest_replaces_oldest_with_a_recap_within_target():
    st = shared()
    for i in range(20):
        st.add(
            "Ann" if i % 2 else "Bob",
            f"Sentence number {i} is here. And more words follow it.",
            "turn",
        )
    before = st.tokens
    folded = st.fold(target=before // 2, recap_budget=before)
    assert folded > 0 and st.tokens <= before // 2 and st.folds == 1
    assert st.text.startswith("Recap:\nBob: Sentence number 0 is here.")
    assert st.text.endswith("Ann: Sentence number 19 is here. And more words follow it.")
    assert st.fold(target=10_000, recap_budget=100) == 0  # nothing to do: no change
    assert st.folds == 1


def test_recap_stays_within_its_budget_over_many_folds():
    st = shared()
    for i in range(200):
        st.add("Ann", f"Point {i} matters a lot. Details.", "turn")
        if st.tokens > 120:
            st.fold(target=60, recap_budget=30)
            assert st.recap_tokens <= 30 and st.tokens <= 120
    assert st.folds > 5


def test_model_summary_replaces_the_recap():
    st = shared()
    for i in range(10):
        st.add("Ann", f"Point {i}.", "turn")
    st.fold(
        target=10, recap_budget=50, summarize=lambda recap, folded: f"{len(folded)} points made"
    )
    assert st.recap_lines == [f"{st.folded_entries} points made"]


def test_extract_takes_the_first_sentence_and_shortens_it():
    from roundtable.context import Entry

    assert extract(Entry("Ann", "First one. Second.", "turn", "", 0)) == "Ann: First one."
    long = Entry("Ann", " ".join(["word"] * 50), "turn", "", 0)
    assert extract(long, words=5) == "Ann: word word word word word ..."
