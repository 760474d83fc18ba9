from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roundtable import textstats as ts
from roundtable.cli import main
from roundtable.metrics import compute, compute_records, gini, pingpong

Q1 = "Should the city plant more trees?"
Q2 = "Who pays for cooling centres?"
PEOPLE = [
    {"name": "Ann", "full_name": "Ann Lee, nurse", "introduction": "I'm Ann Lee and I treat "
     "heatstroke every summer.", "prompt": "You are a careful nurse who speaks plainly."},
    {"name": "Bob", "full_name": "Bob Stone, economist", "prompt": "You ask who pays."},
    {"name": "Cy", "full_name": "Cy Young, engineer", "prompt": "You build things."},
]  # fmt: skip


def run_line(**extra: Any) -> dict[str, Any]:
    return {"type": "run", "participants": PEOPLE, "questions": [Q1, Q2],
            "settings": {"introductions": False, "seed": 1}, **extra}  # fmt: skip


def turn(speaker: str, text: str = "Fine.", phase: str = "discussion", **extra: Any) -> dict:
    topic = extra.pop("topic", Q1 if phase == "discussion" else None)
    return {"type": "turn", "speaker": speaker, "phase": phase, "topic": topic, "text": text,
            "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0, **extra}  # fmt: skip


def figures(*turns: dict, **run: Any) -> dict[str, Any]:
    return compute_records([run_line(**run), *turns, {"type": "end", "status": "completed"}])


def test_turns_shares_and_gini():
    f = figures(turn("Ann"), turn("Bob"), turn("Ann"), turn("Cy"), turn("Bob", phase="wrap_up"),
                turn("Ann", phase="summary"))  # fmt: skip
    assert (f["turns"], f["discussion_turns"], f["summary_turns"]) == (5, 4, 1)
    assert f["shares"] == {"Ann": 0.5, "Bob": 0.25, "Cy": 0.25}
    assert f["gini"] == 0.1667  # (2 x 0.25 + 2 x 0.25) / (2 x 3 x 1)


@pytest.mark.parametrize(
    "values,expected",
    [([], 0.0), ([0.25] * 4, 0.0), ([1, 0], 0.5), ([1, 0, 0, 0], 0.75), ([0, 0], 0.0)],
    ids=["empty", "equal", "one-of-two", "one-of-four", "all-zero"],
)
def test_gini(values, expected):
    assert gini(values) == expected


def test_distinct_counts_within_turns_only():
    f = figures(turn("Ann", "red blue red blue"), turn("Bob", "green"))
    assert (f["distinct_1"], f["distinct_2"]) == (0.6, 0.6667)  # 3/5 words, 2/3 bigrams
    f = figures(turn("Ann", "red blue"), turn("Bob", "red blue"))
    assert f["distinct_2"] == 0.5  # "blue red" spans two turns: not a bigram


@pytest.mark.parametrize(
    "text,loops",
    [
        ("We must act now. The heat kills. We must act now!", True),
        ("We must act now. we MUST act, now", True),
        ("Cool roofs help.\nCool roofs help", True),
        ("Yes. Yes. I agree.", False),
        ("We must act now. We must act soon.", False),
    ],
    ids=["repeat", "normalised", "line-break", "short", "different"],
)
def test_looping(text, loops):
    assert ts.looping(text) is loops
    assert figures(turn("Ann", text), turn("Bob", text))["looping_turns"] == 2 * loops


def test_echo_counts_turns_mostly_said_before_by_anyone_including_introductions():
    intro_echo = turn("Bob", "Ann Lee and I treat heatstroke every summer too")  # 4 of 5
    half = turn("Cy", "and I treat heatstroke every summer x y")  # 2 of 4: not over half
    self_echo = turn("Bob", "Ann Lee and I treat heatstroke every summer too, again")
    short = turn("Ann", "I treat heatstroke every")  # under 5 words: no 5-grams
    records = (intro_echo, half, self_echo, short)
    assert figures(*records, settings={"introductions": True})["echo_turns"] == 2
    assert figures(*records)["echo_turns"] == 1  # no introductions: only the repeat


TEMPLATES = {
    "turn.j2": "{# an internal note about the heat plan here #}\nYou are {{ persona.full_name }}"
    ' ("{{ persona.name }}" at this table).\n'
    "After making your point, ask {{ plan.ask }} for their view, by name.\n"
    "Now write only what {{ persona.name }} says next, without a name tag.",
}
TASK = {"discuss_instructions": "Speak as yourself, in your own voice, in two sentences."}


@pytest.mark.parametrize(
    "speaker,text,leaks",
    [
        ("Bob", "Now write only what Bob says next.", True),
        ("Ann", "Now write only what Bob says next.", False),
        ("Bob", 'I know: you are Bob Stone, economist ("Bob" here).', True),
        ("Bob", "Here is an internal note about the heat plan here.", False),
        ("Bob", "After making your point, ask for their view, by name.", False),
        ("Ann", "Well, I speak as yourself, in your own voice.", True),
        ("Ann", "As a careful nurse who speaks plainly, no.", True),
        ("Bob", "As a careful nurse who speaks plainly, no.", False),
    ],
    ids=["template", "other-name", "full-name", "comment", "break", "task", "persona",
         "others-persona"],
)  # fmt: skip
def test_instruction_leak(speaker, text, leaks):
    f = figures(turn(speaker, text), task=TASK, prompts=TEMPLATES)
    assert f["leak_turns"] == leaks


@pytest.mark.parametrize(
    "text,claims",
    [
        ("I'm Bob Stone.", True),
        ("I am Bob, and trees matter.", True),
        ("As Bob, I think so.", True),
        ("As Bob said, costs matter.", False),
        ("Hello. This is Bob speaking.", True),
        ("This is Bob's point.", False),
        ('You are Cy Young ("Cy" at this table).', True),
        ("Bob here. Fine.", True),
        ("I saw Bob here last week.", False),
        ("i'm Bob, hi.", True),
        ("My name is Cy.", True),
        ("I told Bob Stone so.", False),
        ("I'm Bobby.", False),
        ("i am bob", False),
        ("I'm Ann Lee, nurse.", False),
    ],
    ids=["im-full", "i-am", "as-x", "as-x-said", "this-is", "possessive", "you-are", "x-here",
         "mid-sentence", "lower-i", "my-name", "mention", "longer-word", "lower-case", "own-name"],
)  # fmt: skip
def test_identity_claims_of_another_participant(text, claims):
    f = figures(turn("Ann", text))
    assert (f["identity_claims"], f["identity_other"], f["identity_ai"]) == (claims, claims, 0)


@pytest.mark.parametrize(
    "text,claims",
    [
        ("You, as an AI assistant, take the role of Bob.", True),
        ("As an AI language model, I cannot.", True),
        ("I am just a language model.", True),
        ("I'm a helpful assistant.", True),
        ("We could use it, such as an AI tool.", False),
        ("Heat maps, as an AI-based model shows, help.", False),
        ("I'm an assistant manager.", False),
        ("I'm not an AI, I'm Ann.", False),
    ],
    ids=["as-an-ai", "language-model", "just-a-model", "helpful", "such-as", "ai-based", "job",
         "denial"],
)  # fmt: skip
def test_identity_claims_of_being_an_ai(text, claims):
    f = figures(turn("Ann", text))
    assert (f["identity_claims"], f["identity_ai"]) == (claims, claims)


ANNS = [{"name": "Ann", "full_name": "Ann Lee"}, {"name": "Anna", "full_name": "Anna Berg"}]
SAMS = [{"name": "Sam", "full_name": "Sam Lee, nurse"}, {"name": "Lee", "full_name": "Sam Lee, MD"}]
BOBS = [{"name": "Ann", "full_name": "Ann Lee"}, {"name": "Bobby", "full_name": "Rob Stone, MD"}]


@pytest.mark.parametrize(
    "people,speaker,text,claims",
    [
        (ANNS, "Ann", "I'm Anna Berg.", True),
        (ANNS, "Anna", "I'm Anna.", False),
        (SAMS, "Sam", "I'm Sam Lee.", False),
        (BOBS, "Ann", "I'm Rob Stone.", True),
    ],
    ids=["longer-name", "shorter-name", "shared-full-name", "full-name-before-comma"],
)
def test_identity_name_forms(people, speaker, text, claims):
    assert figures(turn(speaker, text), participants=people)["identity_other"] == claims


def test_mention_handoffs_and_pingpong():
    f = figures(
        turn("Ann", "Bob, what do you think?"),  # Bob next: a handoff
        turn("Bob", "I agree."),
        turn("Ann", "Cy Young had a point."),  # full name up to the comma: a handoff
        turn("Cy", "Bob is right."),  # Bob is not next
        turn("Ann", "Bob!", phase="wrap_up"),  # the summary speaker does not count
        turn("Bob", phase="summary"),
    )
    assert f["handoffs"] == 2
    assert (f["pingpong_longest"], f["pingpong_streaks"]) == (3, 0)


@pytest.mark.parametrize(
    "speakers,streaks",
    [
        ("", []),
        ("A", []),
        ("ABAB", [4]),
        ("ABABACAC", [5, 4]),
        ("ABC", [2, 2]),
        ("AAB", [2]),
        ("ABCBCBA", [2, 5, 2]),
    ],
    ids=["none", "one", "four", "two-streaks", "no-pair", "same-twice", "middle"],
)
def test_pingpong_streaks(speakers, streaks):
    assert pingpong(list(speakers)) == streaks


def test_pingpong_figures():
    f = figures(*(turn(s) for s in "ABABACAC"))
    assert (f["pingpong_longest"], f["pingpong_streaks"]) == (5, 2)


def test_topic_relevance_and_questions_reached():
    f = figures(
        turn("Ann", "Plant trees in every city street."),  # own 3/3, other 0: +1
        turn("Bob", "Cooling costs money, who pays?"),  # own 0, other 2/3: -2/3
        turn("Cy", "Trees cool the city and pay for themselves.", topic=Q2),  # 2/3 each: 0
    )
    assert (f["relevance_mean"], f["on_topic_share"]) == (0.1111, 0.3333)
    assert (f["questions_reached"], f["questions"]) == (2, 2)
    f = figures(turn("Ann", "Trees."), turn("Bob", phase="wrap_up"), turn("Cy", topic="Edited?"),
                questions=[Q1, Q2, "Q3?"])  # fmt: skip
    assert (f["questions_reached"], f["questions"]) == (1, 3)


def test_stem_and_content_words():
    assert ts.content_words("The cities' trees; cooling a City's houses") == {
        "city", "tre", "cool", "hous"}  # fmt: skip
    assert {ts.stem(w) for w in ("pays", "paying", "paid")} == {"pay", "paid"}


def test_tokens_latency_attempts_guards_and_folds():
    f = compute_records([
        run_line(),
        turn("Ann", prompt_tokens=10, completion_tokens=1, latency_s=0.1, guards=["echo"]),
        {"type": "fold"},
        turn("Bob", prompt_tokens=20, completion_tokens=2, latency_s=0.6, attempts=3,
             guards=["echo", "identity"]),
        {"type": "fold"},
        turn("Ann", phase="summary", prompt_tokens=30, completion_tokens=3, latency_s=0.2,
             guards=[{"reason": "leak"}]),
    ])  # fmt: skip
    assert (f["prompt_tokens"], f["completion_tokens"], f["total_tokens"]) == (60, 6, 66)
    assert (f["latency_mean_s"], f["latency_p50_s"], f["latency_max_s"]) == (0.3, 0.2, 0.6)
    assert (f["attempts"], f["retries"]) == (5, 2)
    assert f["guards"] == {"echo": 2, "identity": 1, "leak": 1}
    assert f["folds"] == 2 and f["status"] is None


# The first transcript format: no task, prompts, tokens_source, model, attempts, guards,
# fold records or introductions setting.
OLD = [
    {"type": "run", "version": "0.1.0", "model": "m", "settings": {"turns": 2, "seed": 4},
     "participants": [{"name": "Ann", "full_name": "Ann Lee", "prompt": "You are a careful "
                       "nurse who speaks plainly."}, {"name": "Bob", "full_name": "Bob Stone",
                       "prompt": "You ask who pays."}], "questions": [Q1]},
    {"type": "turn", "index": 0, "speaker": "Ann", "phase": "discussion", "topic": Q1,
     "text": "I'm Ann Lee. As a careful nurse who speaks plainly: plant trees.",
     "temperature": 0.7, "prompt_tokens": 50, "completion_tokens": 9, "latency_s": 0.5,
     "finish_reason": "stop"},
    {"type": "turn", "index": 1, "speaker": "Bob", "phase": "summary", "topic": None,
     "text": "Ann wants trees.", "temperature": 0.4, "prompt_tokens": 70,
     "completion_tokens": 4, "latency_s": 0.3, "finish_reason": "stop"},
    {"type": "end", "status": "completed"},
]  # fmt: skip


def test_old_transcripts_without_new_fields(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "transcript.jsonl").write_text("\n".join(json.dumps(r) for r in OLD))
    f = compute(tmp_path / "old").figures
    assert (f["turns"], f["summary_turns"], f["attempts"], f["retries"]) == (1, 1, 2, 0)
    assert (f["guards"], f["folds"], f["total_tokens"], f["seed"]) == ({}, 0, 133, 4)
    assert (f["echo_turns"], f["leak_turns"], f["questions_reached"]) == (0, 1, 1)
    assert compute(tmp_path / "old" / "transcript.jsonl").path == tmp_path / "old"
    assert main(["metrics", str(tmp_path / "old" / "transcript.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "guards" in out and "none" in out and "1/1" in out


@pytest.fixture
def offline_runs(table: Path, tmp_path: Path, capsys) -> list[Path]:
    runs = [tmp_path / "r1", tmp_path / "r2"]
    for seed, out in enumerate(runs, 1):
        argv = ["--table", str(table), "--offline", "--quiet", "--turns", "4", "--out", str(out)]
        assert main([*argv, "--seed", str(seed)]) == 0
    capsys.readouterr()
    return runs


def test_cli_on_real_offline_runs(offline_runs, capsys):
    assert main(["metrics", "--json", *map(str, offline_runs)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["run"] for d in data] == [str(p) for p in offline_runs]
    lines = (offline_runs[0] / "transcript.jsonl").read_text().splitlines()
    records = [json.loads(x) for x in lines]
    turns = [r for r in records if r["type"] == "turn"]
    first = data[0]
    assert (first["turns"], first["summary_turns"], first["seed"]) == (4, 1, 1)
    assert sorted(first["shares"]) == ["Amara", "Ben", "Chen", "Dara"]
    assert abs(sum(first["shares"].values()) - 1) < 1e-3
    assert first["prompt_tokens"] == sum(t["prompt_tokens"] for t in turns)
    assert (first["attempts"], first["folds"], first["guards"]) == (5, 0, {})
    assert first == compute_records(records) | {"run": str(offline_runs[0])}
    assert main(["metrics", *map(str, offline_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["r1", "r2"] and lines[0].startswith(" ")
    assert any(x.split()[:2] == ["share", "Amara"] for x in lines)
    assert len({len(x) for x in lines if x.startswith("turns")}) == 1


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "run directory not found"),
        (lambda p: p.mkdir(), "not a roundtable run (no transcript.jsonl)"),
        (lambda p: p.write_text('{"type": "turn"}\n'), "first line is not a run record"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00"), "not UTF-8 text"),
        (lambda p: p.write_text('{"type": "run"}\n[1]\n'), "line 2 is not a JSON object"),
        (lambda p: p.write_text('{"type": "run"}\n{"type": "turn"}\n'), "needs a speaker"),
    ],
    ids=["missing", "empty-dir", "not-a-run", "binary", "not-object", "bad-turn"],
)
def test_errors_are_one_line_exit_2(tmp_path, capsys, make, message):
    path = tmp_path / "x"
    make(path)
    assert main(["metrics", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {path}") and message in err and len(err.splitlines()) == 1


def test_the_table_cleans_names_from_the_transcript(tmp_path, capsys):
    run = run_line(participants=[{"name": "Bo\x1b]0;pwned\x07b", "full_name": "B"}])
    (tmp_path / "transcript.jsonl").write_text(json.dumps(run) + "\n")
    assert main(["metrics", str(tmp_path / "transcript.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "share Bob" in out and "\x1b" not in out and "\x07" not in out


CJK = [{"name": "王芳", "full_name": "王芳, 护士"}, {"name": "李雷", "full_name": "李雷"},
       {"name": "Ann", "full_name": "Ann Lee"}]  # fmt: skip


def test_names_and_words_in_scripts_without_spaces():
    f = figures(
        turn("李雷", "我觉得王芳说得对。王芳，你怎么看？"),  # named inside CJK text: a handoff
        turn("王芳", "我是李雷。我们需要树。我们需要树！"),  # a claim, a loop, a handoff
        turn("李雷", "Annabel agrees."),  # "Ann" inside "Annabel" is not Ann
        turn("Ann", "Fine."),
        participants=CJK,
    )
    assert (f["handoffs"], f["identity_other"], f["looping_turns"]) == (2, 1, 1)
    assert ts.words("我们需要树, don't we") == ["我", "们", "需", "要", "树", "don't", "we"]


@pytest.mark.parametrize(
    "text,claims",
    [("I'm Darrin Lindqvist.", True), ("I am Dara Lindqvist.", True), ("I'm Ben Hartley.", False)],
    ids=["made-up-first-name", "full", "own"],
)
def test_a_claim_of_another_surname_with_any_first_name(text, claims):
    people = [{"name": "Ben", "full_name": "Ben Hartley, economist"},
              {"name": "Dara", "full_name": "Dara Lindqvist, climate scientist"}]  # fmt: skip
    assert figures(turn("Ben", text), participants=people)["identity_other"] == claims


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=12), st.integers(1, 6),
       st.sets(st.tuples(*[st.sampled_from("abcd")] * 2)))  # fmt: skip
def test_ngrams_and_their_known_share_follow_their_definitions(tokens, n, known):
    assert ts.ngrams(tokens, n) == [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    grams = ts.ngrams(tokens, 2)
    share = sum(g in known for g in grams) / len(grams) if grams else 0.0
    assert ts.copied_share(tokens, known, 2) == ts.known_share(grams, known) == share


_CJK_CHARS = "\u3040\u30ff\u3400\u4dbf\u4e00\u9fff\uf900\ufaff你好かカ"


@given(st.text(alphabet="ab é1_'’ .,!-ßΩд٣" + _CJK_CHARS, max_size=40))
def test_words_are_runs_of_non_cjk_word_characters_or_single_cjk_characters(text):
    # The reference: a word character not in a CJK block, by lookahead.
    cjk = ts._CJK
    letter = rf"(?:(?![{cjk}])\w)"
    reference = re.compile(rf"[{cjk}]|{letter}+(?:['’]{letter}+)*")
    assert ts.words(text) == reference.findall(text.lower().replace("’", "'"))
