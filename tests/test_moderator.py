from __future__ import annotations

import statistics
from random import Random

import pytest

from roundtable.moderator import (
    TRANSITIONS,
    Moderator,
    Phase,
    TurnPlan,
    always,
    check_transitions,
    topic_length_bounds,
)

NAMES = ["Alice", "Bob", "Carol", "Dan"]
QUESTIONS = [f"Question {i}?" for i in range(1, 30)]


def make(names=NAMES, seed=1, turns=12, wrap=2, per_topic=3, ask=0, **kw) -> Moderator:
    return Moderator(
        names,
        kw.pop("questions", QUESTIONS),
        turns=turns,
        wrap_up_turns=wrap,
        turns_per_topic=per_topic,
        ask_opinion_every=ask,
        rng=Random(seed),
        **kw,
    )


def play(mod: Moderator, say=lambda plan: "I have no one to address.") -> list:
    plans = []
    while (plan := mod.plan()) is not None:
        plans.append(plan)
        mod.record(say(plan))
    return plans


def test_phases_follow_the_transition_table():
    plans = play(make(turns=5, wrap=2))
    assert [p.phase for p in plans] == [Phase.DISCUSSION] * 3 + [Phase.WRAP_UP] * 2 + [
        Phase.SUMMARY
    ]
    assert [p.index for p in plans] == list(range(6))
    assert [p.turns_left for p in plans] == [5, 4, 3, 2, 1, 0]


def test_all_wrap_up_skips_discussion_and_table_is_complete():
    assert [p.phase for p in play(make(turns=2, wrap=2))] == [
        Phase.WRAP_UP,
        Phase.WRAP_UP,
        Phase.SUMMARY,
    ]
    assert set(TRANSITIONS) == set(Phase) and TRANSITIONS[Phase.DONE] == ()
    targets = {t for rules in TRANSITIONS.values() for _, t in rules}
    assert targets == set(Phase) - {Phase.OPENING}


@pytest.mark.parametrize("n", [2, 3, 4, 7], ids=lambda n: f"{n}-people")
def test_nobody_speaks_twice_in_a_row(n):
    names = [f"P{i}" for i in range(n)]
    for seed in range(20):
        speakers = [
            p.speaker
            for p in play(make(names, seed=seed, turns=40, ask=3))
            if p.phase is not Phase.SUMMARY
        ]
        assert all(a != b for a, b in zip(speakers, speakers[1:], strict=False))


def test_single_participant_speaks_every_turn():
    assert {p.speaker for p in play(make(["Solo"], turns=4))} == {"Solo"}


def until(mod: Moderator, speaker: str) -> None:
    """Record filler turns until `speaker` holds the floor."""
    while mod.plan().speaker != speaker:
        mod.record("filler")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("What do you think, Carol?", "Carol"),
        ("Bob said that, but Carol disagrees. Dan?", "Dan"),  # the last mention wins
        ("Dan, and then Bob.", "Dan"),  # Dan is addressed; Bob only mentioned
        ("Bobby and Carolina are not participants. Dan?", "Dan"),  # whole words only
    ],
    ids=["one", "last-wins", "order", "whole-word"],
)
def test_addressed_participant_speaks_next(text, expected):
    for seed in range(5):
        mod = make(seed=seed, turns=50, silence_turns=0)
        until(mod, "Alice")
        mod.record(text)
        assert mod.plan().speaker == expected


def test_own_name_is_not_a_mention():
    mod = make(seed=2, silence_turns=0)
    speaker = mod.plan().speaker
    other = next(n for n in NAMES if n != speaker)
    mod.record(f"As {speaker} I say: {other}, please. Signed, {speaker}.")
    assert mod.plan().speaker == other


def test_an_alias_that_does_not_contain_the_name_counts_as_a_mention():
    # "Dr. Ray" shares no word with "Alice": only the alias list can hand Alice the floor.
    for seed in range(5):
        mod = make(
            seed=seed, turns=50, silence_turns=0, aliases=[["Dr. Ray"], [], ["The Professor"], []]
        )
        until(mod, "Bob")
        mod.record("I agree. Dr. Ray, what do you think?")
        assert mod.plan().speaker == "Alice"
        mod.record("Let's hear from The Professor.")
        assert mod.plan().speaker == "Carol"


def test_regex_metacharacters_in_names_match_as_words():
    mod = make(["A.B", "C++", "(X)"], seed=5, silence_turns=0)
    while mod.plan().speaker == "C++":
        mod.record("skip")
    mod.record("Over to you, C++. Not ACB, not AxB.")
    assert mod.plan().speaker == "C++"
    assert mod.mentioned("AxB and A.Bc", "C++") is None


@pytest.mark.parametrize("per_topic", [1, 2, 3, 4, 7])
def test_average_turns_per_topic_equals_setting(per_topic):
    lengths = []
    for seed in range(60):
        mod = make(seed=seed, turns=200, wrap=0, per_topic=per_topic)
        play(mod)
        lengths += mod.topic_lengths[:-1]  # the last topic is cut short by the end
    assert abs(statistics.mean(lengths) - per_topic) < 0.1 * per_topic
    low, high = topic_length_bounds(per_topic)
    assert (low + high) / 2 == per_topic and min(lengths) >= low and max(lengths) <= high


def test_announced_topic_is_the_topic_discussed():
    plans = play(make(seed=4, turns=30, wrap=3, per_topic=3))
    current = None
    for p in plans:
        if p.phase is Phase.DISCUSSION:
            if p.new_topic:
                assert p.topic != current
                current = p.topic
            assert p.topic == current == QUESTIONS[p.topic_index]
        else:
            assert p.topic is None and not p.new_topic
    assert plans[0].new_topic and plans[0].topic == QUESTIONS[0]


def test_last_question_continues_when_questions_run_out():
    plans = play(make(seed=1, turns=20, wrap=0, per_topic=2, questions=["Only one?", "Two?"]))
    topics = [p.topic for p in plans if p.phase is Phase.DISCUSSION]
    assert topics[0] == "Only one?" and topics[-1] == "Two?"
    assert sum(p.new_topic for p in plans) == 2


def test_summary_by_whoever_spoke_most():
    mod = make(seed=9, turns=9, wrap=0)
    plans = play(mod, say=lambda plan: "Over to you, Bob." if plan.speaker != "Bob" else "Well.")
    summary = plans[-1]
    assert summary.phase is Phase.SUMMARY and summary.ask is None and summary.topic is None
    counts = {n: sum(p.speaker == n for p in plans[:-1]) for n in NAMES}
    assert summary.speaker == "Bob" == max(counts, key=lambda n: (counts[n], -NAMES.index(n)))


def test_summary_tie_goes_to_the_first_listed():
    mod = make(["Zed", "Amy"], seed=1, turns=2, wrap=0)
    plans = play(mod)
    assert plans[-1].speaker == "Zed"


def test_nudges_come_about_every_n_turns_and_name_someone_else():
    asks = []
    for seed in range(30):
        plans = play(make(seed=seed, turns=40, wrap=0, ask=4))
        asks += [p for p in plans if p.phase is Phase.DISCUSSION]
    nudged = [p for p in asks if p.ask]
    assert 0.2 < len(nudged) / len(asks) < 0.3
    assert all(p.ask != p.speaker and p.ask in NAMES for p in nudged)
    assert not any(p.ask for p in play(make(seed=1, turns=40, ask=0)))


def test_seeded_runs_repeat_and_seeds_differ():
    def speakers(seed):
        return [(p.speaker, p.topic, p.ask) for p in play(make(seed=seed, turns=30, ask=3))]

    assert speakers(5) == speakers(5)
    assert speakers(5) != speakers(6)


def test_plan_is_stable_until_recorded():
    mod = make(seed=1, ask=2)
    assert mod.plan() is mod.plan()
    first = mod.plan()
    mod.record("ok")
    assert mod.plan() != first


def test_record_after_done_is_an_error():
    mod = make(turns=1, wrap=0)
    play(mod)
    assert mod.done and mod.plan() is None
    with pytest.raises(RuntimeError):
        mod.record("late")


def test_a_malformed_transition_table_is_rejected():
    broken = dict(TRANSITIONS)
    broken[Phase.WRAP_UP] = (("wrap_up_turns_left", Phase.WRAP_UP), (always, Phase.SUMMARY))
    with pytest.raises(ValueError, match="bad row in wrap_up"):
        check_transitions(broken)
    with pytest.raises(ValueError, match="no row for"):
        check_transitions({k: v for k, v in TRANSITIONS.items() if k is not Phase.DONE})
    check_transitions(TRANSITIONS)  # the real one loads


def test_turn_plan_is_keyword_only():
    with pytest.raises(TypeError):
        TurnPlan(0, "Alice", Phase.DISCUSSION, None, None, False, None, 1)  # type: ignore[misc]
