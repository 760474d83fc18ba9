from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from roundtable.moderator import Moderator, Phase
from roundtable.speakers import Addressing, Facts, choose, pair_streak, parse_selection

COMMON = ["Will", "May", "Eve", "Ben"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Will this be paid for by the city?", None),
        ("May I add something? It may rain.", None),
        ("Eve of the storm is when we act.", None),
        ("Will, what do you think?", "Will"),
        ("I see it differently. What do you think, May?", "May"),
        ("Thanks, Eve.", "Eve"),
        ("Do you agree May?", "May"),
        ("I would like to ask Will about the cost.", "Will"),
        ("Over to Eve.", "Eve"),
        ("So, May: is that fair?", "May"),
        ("May, you said rent. Will, do you agree?", "Will"),  # the last one addressed
        ("Ben said that, and I agree with Ben.", None),  # mentioned, not addressed
    ],
    ids=["will-verb", "may-verb", "eve-noun", "vocative-start", "vocative-end", "thanks",
         "question-end", "ask-x", "over-to", "so-x-colon", "last-wins", "mention-only"],
)  # fmt: skip
def test_addressing_not_mentioning_hands_the_floor(text, expected):
    assert Addressing.build(COMMON).addressed(text, "Ben") == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("王芳，你怎么看？", "王芳"),
        ("我想请李明谈谈成本。", "李明"),
        ("我同意王芳的看法。", None),
        ("佐藤さん、どう思いますか？", "佐藤さん"),
    ],
    ids=["zh-vocative", "zh-please", "zh-mention", "ja-vocative"],
)
def test_names_in_spaceless_scripts_are_found_inside_text(text, expected):
    assert Addressing.build(["王芳", "李明", "佐藤さん", "Ben"]).addressed(text, "Ben") == expected


def test_own_name_is_never_addressed():
    assert Addressing.build(COMMON).addressed("Ben, I think so, Ben.", "Ben") is None


@pytest.mark.parametrize(
    "history,expected",
    [((), 0), (("A",), 1), (("A", "B"), 2), (("C", "A", "B", "A", "B"), 4), (("A", "A"), 1)],
    ids=["empty", "one", "two", "four", "repeat"],
)
def test_pair_streak(history, expected):
    assert pair_streak(history)[0] == expected


def facts(history=(), addressed=None, cap=3, silence=0, talk=None) -> Facts:
    names = ("A", "B", "C", "D")
    return Facts(names, Counter(history), tuple(history), addressed, talk or {}, cap, silence)


def test_a_pair_cannot_hold_the_floor_past_the_cap():
    # A and B name each other every turn; after 3 handoffs someone else is invited.
    choice = choose("natural", facts(("A", "B", "A", "B"), addressed="A"), Random(1))
    assert choice.speaker in ("C", "D") and choice.invited
    assert choose("natural", facts(("A", "B", "A"), addressed="B"), Random(1)).speaker == "B"


def test_a_long_silence_gets_an_invitation():
    choice = choose("natural", facts(("A", "B", "C", "A", "B", "C"), silence=6), Random(3))
    assert choice.speaker == "D" and choice.invited


def test_talkativeness_weights_the_draw():
    picks = Counter(
        choose("natural", facts(("D",), talk={"A": 1.0, "B": 0.1, "C": 0.1}), Random(s)).speaker
        for s in range(400)
    )
    assert picks["A"] > 3 * picks["B"] and picks["D"] == 0


def test_round_robin_and_random_policies():
    assert [choose("round_robin", facts(h), Random(0)).speaker for h in [(), ("A",), ("D",)]] == [
        "A",
        "B",
        "A",
    ]
    picks = {choose("random", facts(("B",)), Random(s)).speaker for s in range(60)}
    assert picks == {"A", "C", "D"}


@pytest.mark.parametrize(
    "answer,expected",
    [("C", "C"), (" c. ", "C"), ('{"speaker": "D"}', "D"), ("A and C", None), ("Zed", None),
     ("", None), ("I pick C", None)],
    ids=["exact", "case-punct", "json", "two-names", "junk", "empty", "sentence"],
)  # fmt: skip
def test_selector_answers_are_parsed_strictly(answer, expected):
    assert parse_selection(answer, ["A", "B", "C", "D"]) == expected


def test_llm_policy_uses_a_valid_choice_and_falls_back_otherwise():
    f = facts(("A",))
    assert choose("llm", f, Random(1), "C").reason == "llm"
    assert choose("llm", f, Random(1), "A").reason.startswith("llm_fallback")  # the last speaker
    assert choose("llm", f, Random(1), None).reason.startswith("llm_fallback")


@pytest.mark.parametrize("policy", ["natural", "round_robin", "random", "llm"])
def test_every_policy_replays_to_the_same_plans(policy):
    def run(selector):
        mod = Moderator(
            ["A", "B", "C", "D"], ["Q1?", "Q2?"], turns=20, wrap_up_turns=2, turns_per_topic=3,
            ask_opinion_every=3, rng=Random(9), policy=policy,
        )  # fmt: skip
        plans, said = [], []
        while True:
            chosen = selector(mod) if mod.wants_selection() else None
            plan = mod.plan(chosen)
            if plan is None:
                return plans, said
            plans.append((plan.speaker, plan.reason, plan.ask, plan.phase))
            if chosen is not None:
                said.append(chosen)
            mod.record(f"I agree. {plan.ask or 'B'}, what do you think?")

    first, answers = run(lambda mod: mod.candidates()[-1])
    replay = iter(answers)
    again, _ = run(lambda mod: next(replay))
    assert first == again and first[-1][3] is Phase.SUMMARY
    assert all(a != b for (a, *_), (b, *_) in zip(first[:-2], first[1:-1], strict=False))
