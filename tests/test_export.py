"""roundtable export: Markdown, and chat fine-tuning lines equal to what the server was sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roundtable.cli import main
from roundtable.export import chat_examples
from roundtable.markdown import to_markdown
from roundtable.transcript import read_records

FOLDING = ["--turns", "18", "--context-window", "800", "--max-tokens", "60"]


def run(table: Path, out: Path, server, *extra: str) -> list[dict]:
    argv = ["--table", str(table), "--out", str(out), "--base-url", server.base_url,
            "--seed", "5", "--quiet", *extra]  # fmt: skip
    assert main(argv) == 0
    return read_records(out / "transcript.jsonl")


def check_sent(examples: list[dict], records: list[dict], received: list[dict]) -> None:
    """Each example is the accepted attempt's request (the last one sent with its seed) plus
    the recorded reply; every model turn has one."""
    turns = {r["index"]: r for r in records if r["type"] == "turn" and not r.get("human")}
    assert [e["metadata"]["turn"] for e in examples] == sorted(turns)
    for example in examples:
        meta = example["metadata"]
        sent = [body for body in received if body.get("seed") == meta["seed"]][-1]
        assert example["messages"][:-1] == sent["messages"], f"turn {meta['turn']}"
        reply = turns[meta["turn"]]["text"]
        assert example["messages"][-1] == {"role": "assistant", "content": reply}
        assert meta["persona"] == turns[meta["turn"]]["speaker"]


@pytest.mark.parametrize(
    "extra,folds",
    [
        (["--layout", "shared", "--turns", "6"], False),
        (["--layout", "shared", *FOLDING], True),
        (["--layout", "chat", *FOLDING], True),
        (["--layout", "chat", *FOLDING, "--fold-summary", "model"], True),
        (["--layout", "shared", "--turns", "6", "--speaker-selection", "llm"], False),
    ],
    ids=["shared", "shared-folded", "chat-folded", "chat-model-summaries", "llm-selector"],
)
def test_chat_jsonl_is_exactly_what_the_server_received(dummy, table, tmp_path, extra, folds):
    server = dummy(record=True, context_window=800 if folds else 32768)
    records = run(table, tmp_path / "o", server, *extra)
    assert any(r["type"] == "fold" for r in records) is folds
    examples = chat_examples(tmp_path / "o")
    check_sent(examples, records, server.received)
    layout = extra[1]
    assert {e["metadata"]["layout"] for e in examples} == {layout}
    assistants = {len([m for m in e["messages"] if m["role"] == "assistant"]) for e in examples}
    assert (max(assistants) > 1) is (layout == "chat")  # own earlier turns, in chat only


def test_older_transcripts_without_entry_counts_export_the_same(dummy, table, tmp_path, capsys):
    context = table / "task" / "context.txt"
    context.write_text(context.read_text() + "\nThe panel meets at the café.\n")
    server = dummy(context_window=800)
    assert any(r["type"] == "fold" for r in run(table, tmp_path / "o", server, *FOLDING))
    capsys.readouterr()
    assert main(["export", str(tmp_path / "o"), "-f", "chat-jsonl", "-o", "-"]) == 0
    before = capsys.readouterr().out
    jsonl = tmp_path / "o" / "transcript.jsonl"
    old = [{k: v for k, v in r.items() if k != "entry_tokens"} for r in read_records(jsonl)]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in old))
    server.close()  # nothing is asked: the counts are estimated, and no request needs them
    assert main(["export", str(tmp_path / "o"), "-f", "chat-jsonl", "-o", "-"]) == 0
    assert capsys.readouterr().out == before
    # ASCII JSON, so model text cannot act on a terminal; it decodes to the words as said.
    assert before.isascii() and "café" in before.encode().decode("unicode_escape")


def test_a_human_seat_is_left_out_and_the_models_requests_still_match(dummy, table, tmp_path):
    server = dummy(record=True)
    said = tmp_path / "zoe.txt"
    said.write_text("Shade first, then water.\n\n/pass\n\nTrees are cheap.\n\n" * 4)
    records = run(table, tmp_path / "o", server, "--turns", "8", "--human", "Zoe",
                  "--human-input", str(said), "--echo-threshold", "1")  # fmt: skip
    humans = [r["index"] for r in records if r["type"] == "turn" and r.get("human")]
    assert humans  # Zoe spoke, and her words are in the later requests
    examples = chat_examples(tmp_path / "o")
    assert not {e["metadata"]["turn"] for e in examples} & set(humans)
    check_sent(examples, records, server.received)
    later = [e for e in examples if e["metadata"]["turn"] > humans[0]]
    assert any("Zoe" in e["messages"][1]["content"] for e in later)


def rewrite_turns(jsonl: Path, changes: dict[int, dict]) -> None:
    records = read_records(jsonl)
    for r in records:
        if r["type"] == "turn":
            r.update({"finish_reason": "stop", "guards": [], **changes.get(r["index"], {})})
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize(
    "flags,left_out",
    [
        ([], set()),
        (["--completed-only"], {1, 2}),
        (["--drop-guarded"], {2, 4}),
        (["--completed-only", "--drop-guarded"], {1, 2, 4}),
    ],
    ids=["all", "completed-only", "drop-guarded", "both"],
)
def test_options_leave_out_unfinished_and_guarded_turns(table, tmp_path, capsys, flags, left_out):
    out = tmp_path / "o"
    argv = ["--table", str(table), "--offline", "--turns", "6", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    rewrite_turns(out / "transcript.jsonl", {
        1: {"finish_reason": "length"},
        2: {"finish_reason": "guarded", "guards": ["echo", "echo", "cut"]},
        3: {"guards": ["stream_dropped", "context_full"]},  # the transport's, not the reply's
        4: {"finish_reason": "stop", "guards": ["empty"]},  # re-asked, then answered
    })  # fmt: skip
    capsys.readouterr()
    assert main(["export", str(out), "--format", "chat-jsonl", "-o", "-", *flags]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["metadata"]["turn"] for x in lines] == [n for n in range(7) if n not in left_out]


def test_export_writes_next_to_the_transcript_or_where_asked(table, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--table", str(table), "--offline", "--turns", "3", "--out", str(out), "-q"]) == 0
    (out / "transcript.md").unlink()
    assert main(["export", str(out), "--format", "md"]) == 0
    md = (out / "transcript.md").read_text()
    assert md == to_markdown(read_records(out / "transcript.jsonl")) and "## Summary" in md
    assert main(["export", str(out / "transcript.jsonl"), "-f", "chat-jsonl"]) == 0
    assert len((out / "chat.jsonl").read_text().splitlines()) == 4  # 3 turns + the summary
    assert main(["export", str(out), "-f", "md", "-o", str(tmp_path / "x.md")]) == 0
    assert (tmp_path / "x.md").read_text() == md
    capsys.readouterr()
    assert main(["export", str(out), "-f", "md", "-o", "-"]) == 0
    assert capsys.readouterr().out == md


@pytest.mark.parametrize(
    "argv,message",
    [
        (["export", "nowhere", "-f", "md"], "Error: nowhere: no transcript.jsonl here"),
        (["export", "RUN", "-f", "pdf"], "Error: --format: unknown format 'pdf'; choose one of"),
        (["export", "RUN", "-f", "md", "--drop-guarded"], "Error: --completed-only and"),
        (["export", "EMPTY", "-f", "chat-jsonl"], "no run record on line 1"),
        (["export", "RUN", "-f", "md", "-o", "RUN/none/x.md"], "cannot write the export"),
    ],
    ids=["not-a-run", "unknown-format", "option-for-md", "not-a-transcript", "unwritable"],
)
def test_mistakes_are_one_error_line(table, tmp_path, capsys, argv, message):
    out = tmp_path / "RUN"
    assert main(["--table", str(table), "--offline", "--turns", "2", "--out", str(out), "-q"]) == 0
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "EMPTY" / "transcript.jsonl").write_text('{"type": "turn"}\n')
    capsys.readouterr()
    assert main([a.replace("RUN", str(out)).replace("EMPTY", str(tmp_path / "EMPTY"))
                 if a not in ("nowhere",) else a for a in argv]) == 2  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and message in err[0]


@pytest.mark.parametrize(
    "name,content",
    [
        ("questions.txt", b"# one question a line\nShould we?\n"),
        ("other.jsonl", b'{"type": "turn", "text": "hi"}\n'),
        ("list.jsonl", b"[1, 2]\n"),
        ("empty.jsonl", b""),
        ("image.png", b"\x89PNG\r\n\x1a\n\xff\xfe"),
    ],
    ids=["text", "other-jsonl", "not-an-object", "empty", "binary"],
)
@pytest.mark.parametrize("fmt", ["md", "chat-jsonl"])
def test_a_file_that_is_not_a_transcript_is_named_as_such(tmp_path, capsys, name, content, fmt):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["export", str(path), "-f", fmt]) == 2
    assert capsys.readouterr().err == (
        f"Error: {path}: not a roundtable transcript (line 1 is not a run record); pass the "
        "run directory a run printed\n"
    )
    assert sorted(tmp_path.iterdir()) == [path]


def test_a_renamed_transcript_asks_for_its_run_directory(table, tmp_path, capsys):
    out = tmp_path / "RUN"
    assert main(["--table", str(table), "--offline", "--turns", "2", "--out", str(out), "-q"]) == 0
    saved = tmp_path / "saved.jsonl"
    saved.write_bytes((out / "transcript.jsonl").read_bytes())
    capsys.readouterr()
    assert main(["export", str(saved), "-f", "md"]) == 2
    assert capsys.readouterr().err.startswith(f"Error: {saved}: a transcript under another name")


def test_html_is_one_self_contained_page_with_every_turn_and_the_diagram(table, tmp_path):
    import html
    import re

    out = tmp_path / "o"
    argv = ["--table", str(table), "--offline", "--turns", "5", "--out", str(out), "-q"]
    assert main(argv) == 0
    assert main(["export", str(out)]) == 0  # html is the default
    page = (out / "transcript.html").read_text()
    turns = [r for r in read_records(out / "transcript.jsonl") if r["type"] == "turn"]
    assert len(turns) == 6
    for t in turns:  # every turn, escaped as the page shows it
        assert html.escape(t["text"].split("\n")[0], quote=False)[:60] in page
    assert "<script" not in page.lower() and "<style" in page  # inline CSS, no scripts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    # The moderator's diagram for this run's settings (5 turns), drawn from TRANSITIONS.
    assert "<svg" in page and "turns done &lt; 5" in page


def test_an_edited_turn_without_text_is_an_error_line_not_a_traceback(table, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--table", str(table), "--offline", "--turns", "3", "--out", str(out), "-q"]) == 0
    jsonl = out / "transcript.jsonl"
    records = read_records(jsonl)
    for r in records:
        if r.get("type") == "turn" and r["index"] == 1:
            del r["text"]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main(["export", str(out), "-f", "chat-jsonl", "-o", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "turn 1" in err and err.count("\n") == 1
