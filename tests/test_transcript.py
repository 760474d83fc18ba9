from __future__ import annotations

import json

import pytest

from roundtable.errors import InputError
from roundtable.transcript import TranscriptWriter, Turn, read_records

TURN = Turn(0, "Ann", "discussion", "Q?", "Hi", 0.7, 10, 2, 0.1, "stop")


def test_each_record_is_on_disk_as_soon_as_it_is_written(tmp_path):
    w = TranscriptWriter(tmp_path / "t.jsonl")
    w.run({"settings": {}})
    w.turn(TURN)
    lines = (tmp_path / "t.jsonl").read_text().splitlines()  # before close
    assert [json.loads(x)["type"] for x in lines] == ["run", "turn"]
    w.end("completed")
    w.close()
    assert read_records(tmp_path / "t.jsonl")[-1] == {"type": "end", "status": "completed"}


def test_a_torn_last_line_is_ignored_but_a_torn_middle_is_an_error(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(TURN.to_dict()) + '\n{"type": "tu')
    assert len(read_records(path)) == 1
    path.write_text('{"type": \n' + json.dumps(TURN.to_dict()) + "\n")
    with pytest.raises(InputError, match="line 1 is not valid JSON"):
        read_records(path)


def test_turn_round_trip_rejects_unknown_keys():
    assert Turn.from_dict(TURN.to_dict()) == TURN
    with pytest.raises(ValueError):
        Turn.from_dict({**TURN.to_dict(), "mood": "x"})


def test_old_turn_records_load_with_defaults_and_new_ones_round_trip():
    old = {k: v for k, v in TURN.to_dict().items() if k not in ("attempts", "guards", "seed",
                                                                 "entry_tokens")}  # fmt: skip
    loaded = Turn.from_dict(old)
    assert (loaded.attempts, loaded.guards, loaded.seed, loaded.entry_tokens) == (1, (), None, None)
    new = Turn(3, "Ann", "discussion", "Q?", "Hi", 0.7, 10, 2, 0.1, "stop", attempts=3,
               guards=("empty", "repetition"), seed=99, entry_tokens=(4, 5))  # fmt: skip
    record = json.loads(json.dumps(new.to_dict()))
    assert record["guards"] == ["empty", "repetition"] and record["entry_tokens"] == [4, 5]
    assert Turn.from_dict(record) == new


def test_resume_and_fold_records_are_written_as_given(tmp_path):
    w = TranscriptWriter(tmp_path / "t.jsonl")
    w.resume(4, {"Ann": "m"}, "http://***@host:8000/v1")
    w.event({"type": "fold", "before_turn": 5, "entries": 2})
    w.close()
    resume, fold = read_records(tmp_path / "t.jsonl")
    assert resume["base_url"] == "http://***@host:8000/v1" and resume["turns_done"] == 4
    assert fold == {"type": "fold", "before_turn": 5, "entries": 2}
