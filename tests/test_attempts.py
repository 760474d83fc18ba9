from __future__ import annotations

from dataclasses import dataclass

import pytest
from fake_client import FakeClient

from roundtable.attempts import Speaker, take_turn
from roundtable.budget import Budget
from roundtable.client import Completion, ContextOverflow, IncompleteStream
from roundtable.errors import ServerError
from roundtable.request import TurnRequest

ANN = Speaker("Ann", ("Ann", "Ann Lee"), ("Bob", "Moderator"), ("Bob Ray",))
OK = "A fine point about shade. Trees help."


class Screen:
    """Records what the attempts show."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.aborts: list[str] = []

    def prompt(self, messages, params) -> None:
        pass

    def begin_turn(self, name, note="") -> None:
        self.shown.append("|")

    def text(self, delta) -> None:
        self.shown.append(delta)

    def end_turn(self, footer="") -> None:
        pass

    def abort_turn(self, reason) -> None:
        self.aborts.append(reason)


def scripted(*replies):
    return lambda number, request: replies[min(number, len(replies) - 1)]


def ask(client: FakeClient, stream: bool = True):
    budget = Budget(clients={"Ann": client}, summary_client=client,
                    render_entry=lambda s, t, k: f"{s}: {t}", render_recap="\n".join,
                    system="S", max_tokens=50)  # fmt: skip
    screen = Screen()

    def compose(attempt: int) -> TurnRequest:
        messages = [{"role": "user", "content": "go"}]
        return TurnRequest(messages, 0.5, 50, ["\nBob:"], 100 + attempt, {}, "")

    outcome = take_turn(ANN, client, budget, screen, compose, lambda: None, stream=stream)
    return outcome, budget, screen


DROP = IncompleteStream("par")


@pytest.mark.parametrize(
    "replies,text,finish,attempts,guards,seed",
    [
        ((OK,), OK, "stop", 1, (), 100),
        ((DROP, OK), OK, "stop", 2, ("stream_dropped",), 100),
        (("", OK), OK, "stop", 2, ("empty",), 101),
        (("Bob: I think so.", OK), OK, "stop", 2, ("impersonation",), 101),
        ((ContextOverflow(900, "full"), OK), OK, "stop", 2, ("context_full",), 100),
        (("Trees are a good idea here. Trees are a good idea here.",),
         "Trees are a good idea here.", "repetition", 1, ("repetition",), 100),
        (("Bob: First whole sentence here. And a second one follows.",),
         "First whole sentence here. And a second one follows.", "salvaged", 4,
         ("impersonation",) * 3 + ("salvaged",), 103),
        (("Bob: \nModerator: Next question.",), "", "guarded_empty", 4,
         ("impersonation",) * 3 + ("guarded_empty",), 103),
    ],
    ids=["plain", "drop", "empty", "impersonation", "overflow", "repetition", "salvage",
         "nothing-to-salvage"],
)  # fmt: skip
def test_outcomes(replies, text, finish, attempts, guards, seed):
    outcome, _, _ = ask(FakeClient(scripted(*replies)))
    assert (outcome.text, outcome.finish_reason) == (text, finish)
    assert (outcome.attempts, outcome.guards, outcome.seed) == (attempts, guards, seed)


def test_a_dropped_stream_is_asked_again_and_the_last_try_does_not_stream():
    client = FakeClient(scripted(DROP, DROP, OK))
    outcome, _, screen = ask(client)
    assert [r["stream"] for r in client.requests] == [True, True, False]
    assert outcome.attempts == 3 and len(screen.aborts) == 2
    with pytest.raises(ServerError, match="broke off 3 times"):
        ask(FakeClient(scripted(DROP)))


def test_a_full_context_teaches_the_window_and_has_its_own_budget():
    _, budget, _ = ask(FakeClient(scripted(ContextOverflow(900, "full"), OK)))
    assert budget.window == 900
    with pytest.raises(ServerError, match="full"):
        ask(FakeClient(scripted(ContextOverflow(900, "full"))))


def test_client_retries_count_as_attempts():
    @dataclass(frozen=True)
    class Retried(Completion):
        requests: int = 3

    def complete(messages, **kw):
        kw["on_text"](OK)
        return Retried(OK, "stop", 1, 1, "usage", 0.1, 0.0)

    client = FakeClient()
    client.complete = complete  # type: ignore[method-assign]
    assert ask(client)[0].attempts == 3


def test_a_speaker_must_not_write_another_by_full_name_up_to_its_comma():
    from roundtable.personas import Persona

    table = [Persona("Dara", "Dara Lindqvist, climate scientist", "p"),
             Persona("Chen", "Chen Wei, emergency-room nurse", "p")]  # fmt: skip
    speaker = Speaker.among(table[0], table)
    assert "Chen Wei" in speaker.others and "Chen Wei" in speaker.headers
    assert "Dara Lindqvist" not in speaker.others


@pytest.mark.parametrize(
    "deltas,expected",
    [
        (["Chen Wei: Dera, so that works."], "Dera, so that works."),
        (["Chen", " Wei", ":", " Dera,", " so that works."], "Dera, so that works."),
        (["Chen Wei, emergency-room nurse,\nI would like that."], "I would like that."),
        (["Chen Wei, I think so."], "I think so."),
    ],
    ids=["short-tag", "short-tag-streamed", "full-name-header-with-comma", "short-vocative"],
)
def test_a_speakers_own_tag_by_full_name_up_to_its_comma_is_dropped(deltas, expected):
    # Seen on SmolLM2: "Chen: Chen Wei: Dera Li, ..." kept the speaker's own tag.
    from roundtable.personas import Persona
    from roundtable.reply import ReplyFilter

    table = [Persona("Dara", "Dara Lindqvist, climate scientist", "p"),
             Persona("Chen", "Chen Wei, emergency-room nurse", "p")]  # fmt: skip
    speaker = Speaker.among(table[1], table)
    reply = ReplyFilter(speaker.own_names, speaker.others, speaker.headers)
    assert "".join(reply.feed(d) for d in deltas) + reply.finish() == expected
