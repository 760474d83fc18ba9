"""A human seat: parsing what is typed, the terminal and file sources, the moderator's
treatment of a person, and whole runs (scripted with --human-input, and typed in a
pseudo-terminal with pexpect)."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import termios
import threading
import time
from dataclasses import replace
from pathlib import Path

import pexpect
import pytest

from roundtable import human
from roundtable.cli import main
from roundtable.errors import InputError
from roundtable.human import Quit, Retry, Said, Script, Terminal, clean, parse
from roundtable.moderator import Moderator
from roundtable.personas import Persona
from roundtable.speakers import Addressing
from roundtable.table import load_table
from roundtable.transcript import Turn

REPO = Path(__file__).resolve().parents[1]
LOOKUP = Addressing.build(
    ["Amara", "Ben", "Zoe"], [["Amara Okafor"], ["Ben Hartley, economist"], ["Zoe Park"]]
).lookup
# Every sentence a model says hands the floor to Zoe, by name.
ASKS_ZOE = " ".join(
    ["What do you think, Zoe? I would plant trees first. Zoe, do you agree? Shade matters "
     "most on the walk to the bus. Cooling centres help the old and the poor."] * 10
)  # fmt: skip


# -- what is typed ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("Shade first.", Said("Shade first.", "human")),
        ("Shade first.\n  and water  \n", Said("Shade first.\n  and water", "human")),
        ("/pass", Said("", "pass")),
        ("", Said("", "pass")),
        ("  /PASS  ", Said("", "pass")),
        ("/ask Ben", Said("", "pass", "Ben")),
        ("/ask ben hartley, economist", Said("", "pass", "Ben")),
        ("/ask @Amara", Said("", "pass", "Amara")),
        ("Trees cost little.\n/ask Ben", Said("Trees cost little.", "human", "Ben")),
        ("\x1b[31mred\x1b[0m \x1b]0;title\x07text\x07", Said("red text", "human")),
        ("x" * (human.MAX_CHARS + 10), Said("x" * human.MAX_CHARS, "length")),
    ],
    ids=[
        "text",
        "lines",
        "pass",
        "empty",
        "pass-case",
        "ask",
        "ask-full-name",
        "ask-at",
        "text-then-ask",
        "escapes",
        "too-long",
    ],
)
def test_parse(typed, said):
    assert parse(typed, "Zoe", LOOKUP) == said


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("/ask Zoe", "not another participant"),
        ("/ask Nobody", "not another participant; ask one of Amara, Ben"),
        ("/ask", "/ask needs a name"),
        ("/shout hello", "/shout: unknown command"),
        ("Some words\n/pass", "/pass takes nothing else"),
        ("/quit now", "/quit takes nothing else"),
    ],
    ids=["ask-self", "ask-unknown", "ask-nobody", "unknown", "text-then-pass", "quit-args"],
)
def test_parse_refuses(typed, message):
    with pytest.raises(Retry, match=message):
        parse(typed, "Zoe", LOOKUP)


def test_quit_stops_like_ctrl_c():
    with pytest.raises(KeyboardInterrupt):  # Quit is one: the run loop treats it so
        parse("/quit", "Zoe", LOOKUP)


def test_clean_keeps_words_and_line_breaks():
    assert clean("a\tb\r\nc\rd\x00\x1b[2J") == "a b\nc\nd"


# -- persona files and --human ------------------------------------------------------------
def test_human_persona_needs_no_prompt_and_round_trips():
    zoe = Persona.from_dict({"name": "Zoe", "full_name": "Zoe Park", "human": True})
    assert zoe.human and zoe.prompt == ""
    assert Persona.from_dict(zoe.to_dict()) == zoe  # as a resume reads it back
    ben = Persona.from_dict({"name": "Ben", "full_name": "Ben H", "prompt": "p"})
    assert "human" not in ben.to_dict()  # model personas' records are unchanged


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"human": True, "model": "m"}, '"model" is for model personas'),
        ({"human": True, "base_url": "http://x/v1"}, '"base_url" is for model personas'),
        ({"human": True, "top_p": 0.5}, '"top_p" is for model personas'),
        ({"human": "yes"}, '"human" must be true or false'),
        ({"human": False}, 'missing required field "prompt"'),
    ],
    ids=["model", "base_url", "sampling", "not-bool", "model-needs-prompt"],
)
def test_human_persona_errors(data, message):
    with pytest.raises(InputError, match=message):
        Persona.from_dict({"name": "Zoe", "full_name": "Zoe Park", **data}, "zoe.json")


def test_seat_adds_a_person_to_the_table_and_its_participant_list(table):
    loaded = load_table(table)
    seated = human.seat(loaded, "Zoe", "Zoe Park, teacher")
    assert [p.name for p in seated.personas][-1] == "Zoe" and human.has_human(seated)
    assert not human.has_human(loaded)
    assert "- Zoe: Zoe Park, teacher" in seated.prompts.system()


@pytest.mark.parametrize(
    ("name", "full", "message"),
    [
        ("ben", None, "'ben' is already a participant"),
        ("Moderator", None, "is reserved"),
        (None, "Zoe Park", "--human-full-name: give the seat a name with --human NAME"),
        ("Zo\ne", None, "one line of text"),
    ],
    ids=["taken", "reserved", "full-name-alone", "two-lines"],
)
def test_seat_errors(table, name, full, message):
    with pytest.raises(InputError, match=message):
        human.seat(load_table(table), name, full)


def test_a_table_of_humans_only_is_refused(table):
    for n, path in enumerate(sorted((table / "participants").iterdir())):
        path.unlink()
        (table / "participants" / f"p{n}.json").write_text(
            json.dumps({"name": f"P{n}", "full_name": "x", "human": True})
        )
    with pytest.raises(InputError, match="every participant is human"):
        human.seat(load_table(table), None)


# -- the moderator ------------------------------------------------------------------------
def _moderator(turns=3, **kw):
    return Moderator(["Amara", "Ben", "Zoe"], ["Q?"], turns=turns, wrap_up_turns=0,
                     turns_per_topic=4, ask_opinion_every=0, rng=random.Random(1),
                     humans=["Zoe"], **kw)  # fmt: skip


def _talk(moderator, speakers):
    for name in speakers:
        plan = moderator.plan()
        moderator._pending = replace(plan, speaker=name)  # as if the floor went to name
        moderator.record("words")
    return moderator.plan()


@pytest.mark.parametrize(
    ("may", "speakers", "summariser"),
    [
        (False, ["Zoe", "Amara", "Zoe"], "Amara"),  # the human spoke most: a model summarises
        (True, ["Zoe", "Amara", "Zoe"], "Zoe"),  # allowed, and alone at the top
        (True, ["Zoe", "Ben", "Zoe", "Ben"], "Ben"),  # a tie: the model who spoke most
    ],
    ids=["never-by-default", "allowed-alone", "allowed-tie"],
)
def test_summary_goes_to_a_model_unless_allowed(may, speakers, summariser):
    plan = _talk(_moderator(len(speakers), human_may_summarise=may), speakers)
    assert plan.phase.value == "summary" and plan.speaker == summariser


def test_a_handoff_is_an_address():
    m = _moderator()
    plan = m.plan()
    m.record("nothing to say", handoff="Ben" if plan.speaker != "Ben" else "Amara")
    assert m.plan().reason == "addressed"
    m.record("words, no name")
    assert m.plan().reason != "addressed"


# -- records ------------------------------------------------------------------------------
def test_turn_records_mark_human_turns_and_old_records_load():
    base = dict(index=0, speaker="Zoe", phase="discussion", topic="Q?", text="t",
                temperature=0.0, prompt_tokens=0, completion_tokens=0, latency_s=1.0,
                finish_reason="human")  # fmt: skip
    record = Turn(**base, human=True, handoff="Ben").to_dict()
    assert record["human"] is True and record["handoff"] == "Ben"
    assert Turn.from_dict(record) == Turn(**base, human=True, handoff="Ben")
    model = Turn(**base).to_dict()
    assert "human" not in model and not Turn.from_dict(model).human


# -- sources --------------------------------------------------------------------------------
def test_script_gives_paragraphs_then_stops(tmp_path):
    path = tmp_path / "turns.txt"
    path.write_text("one\nline two\n\n\n/pass\n  \n/ask Ben\n")
    script = Script(path)
    assert [script.read("", None) for _ in range(3)] == ["one\nline two", "/pass", "/ask Ben"]
    with pytest.raises(Quit, match="no more turns"):
        script.read("", None)


def test_no_terminal_is_an_error_unless_a_file_gives_the_turns(table, tmp_path):
    seated = human.seat(load_table(table), "Zoe")
    with open(os.devnull) as stdin, pytest.raises(InputError, match="not a terminal"):
        human.open_source(seated, None, stdin)
    (tmp_path / "t.txt").write_text("hi\n")
    assert isinstance(human.open_source(seated, tmp_path / "t.txt"), Script)
    with pytest.raises(InputError, match="nobody at this table is human"):
        human.open_source(load_table(table), tmp_path / "t.txt")


class _Pty:
    """A pseudo-terminal pair; `type` writes to it as a person would, chunk by chunk."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self._typists: list[threading.Thread] = []

    def type(self, *chunks, delay=0.05):
        def later():
            for chunk in chunks:
                time.sleep(delay)
                os.write(self.master, chunk)

        self._typists.append(threading.Thread(target=later, daemon=True))
        self._typists[-1].start()

    def close(self):
        for typist in self._typists:
            typist.join()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty():
    pair = _Pty()
    yield pair
    pair.close()


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ([b"first line\n", b"second\n", b"\n"], "first line\nsecond"),
        ([b"\n", b"words\n", b"\n"], "words"),  # an empty line before any words is ignored
        ([b"/pass\n", b"more\n", b"\n"], "/pass"),  # a command ends the turn at once
        ([b"text\n", b"/ask Ben\n", b"more\n", b"\n"], "text\n/ask Ben"),
        ([b"caf\xc3", b"\xa9 \n", b"\x04"], "caf\u00e9"),  # Ctrl-D ends it
    ],
    ids=["empty-line", "leading-empty", "command", "text-command", "ctrl-d"],
)
def test_terminal_reads_a_turn(pty, typed, read):
    pty.type(*typed)
    sink = _Sink()
    assert Terminal(pty.slave, sink).read("Zoe: ", 5).strip() == read
    assert sink.text.startswith("Zoe: ")


def test_terminal_timeout_passes_only_when_nothing_is_typed(pty):
    pty.type(b"too late\n", b"\n", delay=1.5)  # so a broken timeout fails, not hangs
    started = time.monotonic()
    assert Terminal(pty.slave, _Sink()).read("Zoe: ", 0.3) is None
    assert 0.25 < time.monotonic() - started < 1.4
    time.sleep(2)
    termios.tcflush(pty.slave, termios.TCIFLUSH)
    pty.type(b"slow\n", b"\n", delay=0.4)  # a first line in time: no deadline after it
    assert Terminal(pty.slave, _Sink()).read("Zoe: ", 0.6) == "slow"


def test_terminal_shows_typed_escapes_as_carets(pty):
    attrs = termios.tcgetattr(pty.slave)
    attrs[3] &= ~termios.ECHOCTL
    termios.tcsetattr(pty.slave, termios.TCSANOW, attrs)
    pty.type(b"\x1b[31mred\n", b"\n")
    Terminal(pty.slave, _Sink()).read("Zoe: ", 5)
    echoed = os.read(pty.master, 4096)
    assert b"^[[31mred" in echoed and b"\x1b" not in echoed
    assert not termios.tcgetattr(pty.slave)[3] & termios.ECHOCTL  # restored afterwards


# -- whole runs, scripted ---------------------------------------------------------------------
def _records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]


def _turns(out: Path) -> list[dict]:
    return [r for r in _records(out) if r["type"] == "turn"]


def _scripted(table, out, url, text, tmp_path, *extra):
    path = tmp_path / f"{out.name}.txt"
    path.write_text(text)
    args = ["--table", str(table), "--out", str(out), "--base-url", url, "--seed", "5",
            "--turns", "8", "--echo-threshold", "1", "--human", "Zoe", "--quiet",
            "--human-input", str(path), *extra]  # fmt: skip
    return main(args)


SCRIPT = "Shade first.\nThen water.\n\n/pass\n\nTrees are cheap.\n/ask Ben\n\nI learned a lot.\n"


def test_scripted_run_records_human_turns(dummy, table, tmp_path, capsys):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    assert _scripted(table, out, server.base_url, SCRIPT, tmp_path) == 0
    turns = _turns(out)
    mine = [t for t in turns if t["speaker"] == "Zoe"]
    assert [(t["text"], t["finish_reason"], t.get("handoff")) for t in mine] == [
        ("Shade first.\nThen water.", "human", None),
        ("", "pass", None),
        ("Trees are cheap.", "human", "Ben"),
        ("I learned a lot.", "human", None),
    ]
    assert all(t["human"] is True and t["model"] is None for t in mine)
    assert not any("human" in t for t in turns if t["speaker"] != "Zoe")
    after = turns[turns.index(mine[2]) + 1]
    assert (after["speaker"], after["chosen_by"]) == ("Ben", "addressed")
    assert turns[-1]["phase"] == "summary" and turns[-1]["speaker"] != "Zoe"
    run = _records(out)[0]
    assert run["participants"][-1]["human"] is True and "Zoe" not in run["models"]


def test_models_address_the_human_by_name(dummy, table, tmp_path):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    assert _scripted(table, out, server.base_url, SCRIPT, tmp_path) == 0
    turns = _turns(out)
    who = Addressing.build(["Amara", "Ben", "Chen", "Dara", "Zoe"])
    asked = [
        n
        for n, t in enumerate(turns[:-1])
        if t["speaker"] != "Zoe" and who.addressed(t["text"], t["speaker"]) == "Zoe"
    ]
    assert asked  # models' replies hand the floor to the human, by name
    assert any(turns[n + 1]["speaker"] == "Zoe" for n in asked)
    assert all(
        turns[n + 1]["chosen_by"] == "addressed" for n in asked if turns[n + 1]["speaker"] == "Zoe"
    )


def test_seeded_runs_with_the_same_typed_text_are_identical(dummy, table, tmp_path):
    server = dummy(corpus=ASKS_ZOE)
    assert _scripted(table, tmp_path / "a", server.base_url, SCRIPT, tmp_path) == 0
    assert _scripted(table, tmp_path / "b", server.base_url, SCRIPT, tmp_path) == 0

    def strip(out):
        return [(t["speaker"], t["phase"], t["text"], t.get("handoff")) for t in _turns(out)]

    assert strip(tmp_path / "a") == strip(tmp_path / "b")


def test_quit_then_resume_equals_an_unbroken_run(dummy, table, tmp_path, capsys):
    server = dummy(corpus=ASKS_ZOE)
    whole = tmp_path / "whole"
    assert _scripted(table, whole, server.base_url, SCRIPT, tmp_path) == 0
    first, rest = SCRIPT.split("/ask Ben\n\n")  # the handoff is replayed, then Ben's turn
    broken = tmp_path / "broken"
    assert _scripted(table, broken, server.base_url, first + "/ask Ben\n\n/quit\n", tmp_path) == 130
    assert _records(broken)[-1] == {"type": "end", "status": "interrupted"}
    assert "Resume with" in capsys.readouterr().err
    (tmp_path / "rest.txt").write_text(rest)
    resumed = main(["--resume", str(broken), "--quiet", "--human-input",
                    str(tmp_path / "rest.txt")])  # fmt: skip
    assert resumed == 0

    def strip(out):
        return [(t["speaker"], t["phase"], t["text"], t.get("handoff")) for t in _turns(out)]

    assert strip(broken) == strip(whole)


def test_a_script_that_runs_out_stops_resumably(dummy, table, tmp_path, capsys):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    assert _scripted(table, out, server.base_url, "Only this.\n", tmp_path) == 130
    assert _records(out)[-1]["status"] == "interrupted"
    assert "no more turns" in capsys.readouterr().err


def test_no_terminal_says_so_once_at_start(dummy, table, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["--table", str(table), "--out", str(out), "--offline", "--human", "Zoe"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("Error: standard input: not a")
    assert "--human-input FILE" in err[0] and not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--human", "Zoe"], "--human: a resumed run keeps the participants"),
        (["--human-timeout", "0"], "--human-timeout: must be a number of seconds > 0"),
    ],
    ids=["human-on-resume", "timeout"],
)
def test_flag_errors(tmp_path, capsys, args, message):
    if args[0] == "--human":
        args = ["--resume", str(tmp_path), *args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_bad_command_in_a_script_is_an_error(dummy, table, tmp_path, capsys):
    server = dummy(corpus=ASKS_ZOE)
    assert _scripted(table, tmp_path / "o", server.base_url, "/ask Nobody\n", tmp_path) == 2
    assert "Error: --human-input: /ask Nobody: not another participant" in capsys.readouterr().err


# -- whole runs, typed in a pseudo-terminal -------------------------------------------------------
def _spawn(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    # ECHOCTL off: a terminal would then echo a typed Escape raw, unless roundtable sets it.
    command = f"stty -echoctl; exec {sys.executable} -m roundtable " + " ".join(args)
    child = pexpect.spawn("/bin/sh", ["-c", command], env=env, encoding="utf-8", timeout=30,
                          cwd=str(tmp_path))  # fmt: skip
    child.logfile_read = log = open(tmp_path / "screen.txt", "a", encoding="utf-8")  # noqa: SIM115
    child.delaybeforesend = 0.05
    return child, log


def _finish(child, log):
    child.expect(pexpect.EOF)
    child.close()
    log.close()
    return child.exitstatus


@pytest.mark.skipif(shutil.which("stty") is None, reason="needs stty")
def test_typed_session_speaks_passes_hands_over_quits_and_resumes(dummy, table, tmp_path):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    args = ["--table", str(table), "--out", str(out), "--base-url", server.base_url,
            "--seed", "5", "--turns", "8", "--echo-threshold", "1", "--human", "Zoe"]  # fmt: skip
    child, log = _spawn(args, tmp_path)
    child.expect("Zoe, your turn. The question: ")
    child.expect("Zoe: $")
    child.sendline("Shade \x1b[31mfirst\x1b[0m.")
    child.sendline("Then water.")
    child.sendline("")
    child.expect("control characters were removed")
    child.expect("Zoe: $")
    child.sendline("/pass")
    child.expect("Zoe passes")
    child.expect("Zoe: $")
    child.sendline("Trees are cheap.")
    child.sendline("/ask Ben")
    child.expect("Zoe hands the floor to Ben")
    child.expect("Zoe: $")
    child.sendline("/quit")
    child.expect("interrupted; the finished turns are saved. Resume with")
    assert _finish(child, log) == 130
    assert _records(out)[-1] == {"type": "end", "status": "interrupted"}
    spoken = len(_turns(out))

    child, log = _spawn(["--resume", str(out)], tmp_path)
    child.expect(f"resuming {out} after turn {spoken}")
    child.expect("Zoe: $")  # asked again for the turn not yet spoken
    child.sendline("I learned a lot.")
    child.sendline("")
    assert _finish(child, log) == 0
    turns = _turns(out)
    mine = [t for t in turns if t["speaker"] == "Zoe"]
    assert [(t["text"], t["finish_reason"], t.get("handoff")) for t in mine] == [
        ("Shade first.\nThen water.", "human", None),
        ("", "pass", None),
        ("Trees are cheap.", "human", "Ben"),
        ("I learned a lot.", "human", None),
    ]
    after = turns[turns.index(mine[2]) + 1]
    assert (after["speaker"], after["chosen_by"]) == ("Ben", "addressed")
    assert _records(out)[-1] == {"type": "end", "status": "completed"}
    screen = (tmp_path / "screen.txt").read_text()
    assert "^[[31mfirst" in screen and "\x1b" not in screen  # shown, never obeyed


@pytest.mark.skipif(shutil.which("stty") is None, reason="needs stty")
def test_typed_session_timeout_and_ctrl_c(dummy, table, tmp_path):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    args = ["--table", str(table), "--out", str(out), "--base-url", server.base_url,
            "--seed", "3", "--turns", "8", "--echo-threshold", "1", "--human", "Zoe",
            "--human-timeout", "0.5"]  # fmt: skip
    child, log = _spawn(args, tmp_path)
    child.expect("nothing typed in 0.5 s; Zoe passes")
    child.expect("Zoe: $")
    child.sendintr()
    child.expect("interrupted; the finished turns are saved")
    assert _finish(child, log) == 130
    first = _turns(out)[0]
    assert (first["speaker"], first["text"], first["finish_reason"]) == ("Zoe", "", "timeout")
    assert _records(out)[-1] == {"type": "end", "status": "interrupted"}


def test_transcript_md_says_what_a_person_did(dummy, table, tmp_path):
    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    assert _scripted(table, out, server.base_url, SCRIPT, tmp_path) == 0
    md = (out / "transcript.md").read_text()
    assert "**Zoe:** Shade first.  \nThen water." in md and "**Zoe:** _(passes)_" in md
    assert "**Zoe:** Trees are cheap.\n\n_(hands the floor to Ben)_" in md


def test_a_study_refuses_a_human_seat(table, tmp_path, capsys):
    (table / "participants" / "zoe.json").write_text(
        json.dumps({"name": "Zoe", "full_name": "Zoe Park", "human": True})
    )
    (tmp_path / "exp.yaml").write_text("table: table\nfactors:\n  turns: [2]\n")
    assert main(["study", str(tmp_path / "exp.yaml"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and len(err.splitlines()) == 1
    assert 'a human seat ("human": true) cannot take part in a study' in err


def test_metrics_count_no_requests_or_latency_for_a_person(dummy, table, tmp_path):
    from roundtable.metrics import compute_records

    server = dummy(corpus=ASKS_ZOE)
    out = tmp_path / "o"
    assert _scripted(table, out, server.base_url, SCRIPT, tmp_path) == 0
    records = _records(out)
    for r in records:  # a person who took a long time to type
        if r.get("human"):
            r["latency_s"] = 999.0
    figures = compute_records(records)
    models = [t for t in _turns(out) if not t.get("human")]
    assert figures["attempts"] == sum(t["attempts"] for t in models)
    assert figures["latency_max_s"] < 999


def test_check_lists_a_human_seat(table, capsys):
    zoe = "name: Zoe\nfull_name: Zoe Park\nhuman: true\n"
    (table / "participants" / "zoe.yaml").write_text(zoe)
    assert main(["check", "--table", str(table)]) == 0
    assert "Zoe Park  (human: types at the terminal)" in capsys.readouterr().out


class _Screen:
    """A display that remembers what a seat showed."""

    def __init__(self):
        self.lines, self.notices, self.turns = [], [], []

    def seat(self, name, lines):
        self.lines += list(lines)
        return f"{name}: "

    def notice(self, text):
        self.notices.append(text)

    result = notice

    def begin_turn(self, name, note=""):
        self.turns.append(f"{name}: ")

    def text(self, delta):
        self.turns[-1] += delta

    def end_turn(self, footer=""):
        pass


@pytest.mark.parametrize(
    ("phase", "ask", "shown"),
    [
        ("discussion", "Ben", ["Zoe, your turn. The question: Q?",
                               "After making your point, ask Ben for their view."]),
        ("discussion", None, ["Zoe, your turn. The question: Q?"]),
        ("wrap_up", None, ["Zoe, your closing remarks: your main recommendation and one "
                           "thing you learned from the others."]),
    ],
    ids=["nudge", "plain", "closing"],
)  # fmt: skip
def test_seat_shows_the_question_and_the_nudge(tmp_path, phase, ask, shown):
    from roundtable.moderator import Phase, TurnPlan

    (tmp_path / "t.txt").write_text("Trees.\n\n/pass\n")
    seat = human.Seat(Script(tmp_path / "t.txt"))
    plan = TurnPlan(index=0, speaker="Zoe", phase=Phase(phase), topic="Q?", topic_index=0,
                    new_topic=False, ask=ask, turns_left=3)  # fmt: skip
    screen = _Screen()
    assert seat.take(plan, screen, LOOKUP).text == "Trees."
    assert screen.lines[:-1] == shown and screen.lines[-1].startswith("(Several lines;")
    assert screen.turns == ["Zoe: Trees."]  # a scripted turn is shown as if typed
    assert seat.take(plan, screen, LOOKUP).finish_reason == "pass"
    assert screen.lines[-1] == shown[-1]  # the help is shown once
    assert screen.notices == ["roundtable: Zoe passes"]
