from __future__ import annotations

from dataclasses import replace

import pytest

from roundtable.budget import Entry, SharedTranscript
from roundtable.config import Settings
from roundtable.moderator import Phase, TurnPlan
from roundtable.personas import Persona
from roundtable.request import (
    SEED_SLOTS,
    attempt_seed,
    build_request,
    chat_message_count,
    messages,
    stop_sequences,
)

PERSONA = Persona.from_dict(
    {"name": "Ann", "full_name": "Ann Lee, nurse", "prompt": "You are Ann.", "creativity": 0.5},
    source="ann.json",
)


SHARED = SharedTranscript(lambda lines: "\n".join(lines))
SHARED.add(Entry("Bob", "T", "turn", "T", 1))


def plan(index: int = 3, phase: Phase = Phase.DISCUSSION) -> TurnPlan:
    return TurnPlan(index=index, speaker="Ann", phase=phase, topic="Q?", topic_index=0,
                    new_topic=False, ask=None, turns_left=4)  # fmt: skip


def request(settings: Settings, attempt: int = 0, persona: Persona = PERSONA, **kw):
    values = dict(plan=plan(), persona=persona, settings=settings, system="S", transcript=SHARED,
                  own="O", names=["Ann", "Bob", "Cy"], counts={"Bob": 1, "Cy": 2},
                  attempt=attempt)  # fmt: skip
    return build_request(**{**values, **kw})


@pytest.mark.parametrize("run_seed", [0, 7, 2**31 - 1, 2**62 + 5], ids=["0", "7", "max31", "big"])
def test_no_two_attempts_of_a_run_share_a_seed(run_seed):
    seeds = {attempt_seed(run_seed, turn, a) for turn in range(2000) for a in range(4)}
    assert len(seeds) == 2000 * 4


def test_a_re_ask_never_takes_the_next_turns_seed():
    assert attempt_seed(9, 4, 1) != attempt_seed(9, 5, 0)
    with pytest.raises(ValueError):
        attempt_seed(9, 4, SEED_SLOTS)


def test_the_request_is_pure_and_lays_out_shared_text_first():
    settings = replace(Settings(), seed=11, max_tokens=77, top_p=0.9)
    a, b = request(settings), request(settings)
    assert a == b and a.messages == messages("S", "T", "O")
    assert a.messages[1]["content"] == "T\n\nO"
    assert (a.max_tokens, a.temperature, a.sampling["top_p"]) == (77, 0.5, 0.9)
    assert a.seed == attempt_seed(11, 3, 0) and request(settings, 1).seed == attempt_seed(11, 3, 1)
    assert request(settings, persona=replace(PERSONA, seed=5)).seed == attempt_seed(5, 3, 0)


def test_stop_sequences_name_the_busiest_others_first_and_at_most_four():
    assert stop_sequences("Ann", ["Ann", "Bob", "Cy"], {"Bob": 1, "Cy": 2}) == [
        "\nCy:", "\nBob:", "\nModerator:"]  # fmt: skip
    many = [f"P{i}" for i in range(6)]
    assert len(stop_sequences("P0", many, {})) == 4


@pytest.mark.parametrize(
    "phase,note", [(Phase.DISCUSSION, ""), (Phase.WRAP_UP, "closing"), (Phase.SUMMARY, "summary")],
    ids=["discussion", "wrap-up", "summary"],
)  # fmt: skip
def test_the_note_follows_the_phase(phase, note):
    assert request(Settings(), plan=plan(phase=phase)).note == note


def test_the_chat_layout_sends_own_words_as_assistant_and_others_as_user():
    t = SharedTranscript(lambda lines: "RECAP " + " ".join(lines))
    for speaker, text, kind in [("Moderator", "Welcome.", "moderator"), ("Ann", "I'm Ann.",
                                "introduction"), ("Bob", "I'm Bob.", "introduction"),
                                ("Bob", "Costs.", "turn"), ("Ann", "Shade.", "turn"),
                                ("Cy", "Water.", "turn")]:  # fmt: skip
        t.add(Entry(speaker, text, kind, f"{speaker}: {text}", 3))
    settings = replace(Settings(), layout="chat")
    sent = request(settings, transcript=t, system="S+persona", own="CUE").messages
    assert sent == [
        {"role": "system", "content": "S+persona"},
        {"role": "user", "content": "Moderator: Welcome."},
        {"role": "assistant", "content": "I'm Ann."},
        {"role": "user", "content": "Bob: I'm Bob.\n\nBob: Costs."},
        {"role": "assistant", "content": "Shade."},
        {"role": "user", "content": "Cy: Water.\n\nCUE"},
    ]
    assert chat_message_count(t, "Ann") == 6


def test_the_chat_layout_puts_a_recap_first():
    t = SharedTranscript(lambda lines: "RECAP")
    t.recap = "(Earlier: Bob said costs.)"
    t.add(Entry("Ann", "Shade.", "turn", "Ann: Shade.", 2))
    sent = request(replace(Settings(), layout="chat"), transcript=t, own="CUE").messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "(Earlier: Bob said costs.)" and sent[-1]["content"] == "CUE"
