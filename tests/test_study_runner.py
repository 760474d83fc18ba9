from __future__ import annotations

import io
import json
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dummy_server import BackgroundServer
from roundtable.client.transport import Transport
from roundtable.study.plan import expand
from roundtable.study.progress import Progress
from roundtable.study.questionnaire import Questionnaire
from roundtable.study.results import read_csv
from roundtable.study.runner import make_runner
from roundtable.study.spec import load_experiment

QUESTIONS = """questionnaire:
  - {id: mood, kind: likert, question: "How do you feel?", scale: 5, when: [before, after]}
  - {id: pick, kind: choice, question: "Which one?", options: [a, b, c, d]}
"""


def _experiment(tmp_path: Path, extra: str = "", *, seeds: int = 2) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"table: table\nsettings: {{turns: 4, wrap_up_turns: 1, max_tokens: 30, retries: 0}}\n"
        f"factors:\n  layout: [shared, chat]\nseeds: {seeds}\n{extra}",
        encoding="utf-8",
    )
    return path


def _study(path: Path, out: Path, servers: list[Any], progress: Progress | None = None) -> int:
    exp = load_experiment(path)
    runner = make_runner(exp, expand(exp), out, servers=servers, progress=progress)
    return runner.execute()


def _turns(out: Path) -> dict[str, list[str]]:
    found = {}
    for jsonl in sorted(out.glob("runs/*/transcript.jsonl")):
        records = [json.loads(line) for line in jsonl.read_text().splitlines()]
        found[jsonl.parent.name] = [r["text"] for r in records if r.get("type") == "turn"]
    return found


def _answers(out: Path) -> list[tuple[str, ...]]:
    rows = read_csv(out / "answers.csv")
    return sorted((r["run"], r["persona"], r["item"], r["when"], r["answer"]) for r in rows)


def test_concurrency_limit_per_endpoint(
    table: Path, tmp_path: Path, dummy: Callable[..., BackgroundServer]
) -> None:
    slow = dummy(latency_ms=150, tokens_per_second=400)  # long enough to overlap under load
    path = _experiment(
        tmp_path, f"endpoints:\n  - {{base_url: '{slow.base_url}', concurrency: 2}}\n", seeds=3
    )
    assert _study(path, tmp_path / "out", []) == 0
    with urllib.request.urlopen(f"{slow.root_url}/stats") as response:
        stats = json.load(response)
    assert stats["peak"] == 2  # used to the limit, never beyond
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"completed"}


def test_interrupt_then_rerun_matches_uninterrupted(table: Path, tmp_path: Path) -> None:
    path = _experiment(tmp_path, QUESTIONS)
    servers: list[Any] = []
    try:
        assert _study(path, tmp_path / "whole", servers) == 0

        class StopAfter(Progress):
            def turn(self) -> None:
                super().turn()
                if self.turns == 5:
                    runner.stop.set()  # as Ctrl-C does

        exp = load_experiment(path)
        runner = make_runner(
            exp, expand(exp), tmp_path / "cut", servers=servers, progress=StopAfter(enabled=False)
        )
        assert runner.execute() == 130
        statuses = [
            json.loads(p.read_text())["status"]
            for p in (tmp_path / "cut").glob("runs/*/study.json")
        ]
        assert "interrupted" in statuses
        said = io.StringIO()
        assert _study(path, tmp_path / "cut", servers, Progress(stream=said)) == 0
    finally:
        for s in servers:
            s.close()
    resumed = [
        p
        for p in (tmp_path / "cut").glob("runs/*/transcript.jsonl")
        if '"type": "resume"' in p.read_text()
    ]
    assert resumed  # carried on from its saved turns, not started again
    first = said.getvalue().splitlines()[0]
    assert first == f"roundtable: study: 4 runs: {statuses.count('completed')} already " + (
        f"complete, {4 - statuses.count('completed')} to resume, 0 to start"
    )
    whole, cut = _turns(tmp_path / "whole"), _turns(tmp_path / "cut")
    assert len(whole) == 4 and whole == cut
    assert _answers(tmp_path / "whole") == _answers(tmp_path / "cut")
    assert len(_answers(tmp_path / "cut")) == 4 * 4 * 3  # runs x personas x (2 mood + 1 pick)


def test_stop_during_the_questionnaire_leaves_the_run_interrupted(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _experiment(tmp_path, QUESTIONS, seeds=1)
    servers: list[Any] = []
    real = Questionnaire.ask
    stopped: list[str] = []

    def ask(self: Questionnaire, table: Any, clients: Any, when: str, *a: Any) -> Any:
        if when == "after" and not stopped:
            stopped.append(table.settings.layout)
            runner.stop.set()  # Ctrl-C as the personas start answering
        return real(self, table, clients, when, *a)

    try:
        assert _study(path, tmp_path / "whole", servers) == 0
        exp = load_experiment(path)
        runner = make_runner(exp, expand(exp), tmp_path / "cut", servers=servers)
        monkeypatch.setattr(Questionnaire, "ask", ask)
        assert runner.execute() == 130
        (run_dir,) = (tmp_path / "cut").glob(f"runs/layout-{stopped[0]}-*")
        assert json.loads((run_dir / "study.json").read_text())["status"] == "interrupted"
        assert not (run_dir / "answers.json").read_text().count('"after"')
        discussion = (run_dir / "transcript.jsonl").read_text()
        monkeypatch.setattr(Questionnaire, "ask", real)
        assert _study(path, tmp_path / "cut", servers) == 0
    finally:
        for s in servers:
            s.close()
    # The re-run asked the questionnaire without redoing the finished discussion...
    assert (run_dir / "transcript.jsonl").read_text() == discussion
    # ...and gives what an uninterrupted study gives.
    assert _turns(tmp_path / "whole") == _turns(tmp_path / "cut")
    assert _answers(tmp_path / "whole") == _answers(tmp_path / "cut")
    assert len(_answers(tmp_path / "cut")) == 2 * 4 * 3


def test_runs_are_queued_across_conditions(table: Path, tmp_path: Path) -> None:
    # Condition by condition, one condition would run while the server is busier (or
    # warmer) than the other: its timing figures would differ for no reason of its own.
    path = _experiment(tmp_path, "endpoints:\n  - {name: one, concurrency: 1}\n", seeds=3)
    servers: list[Any] = []
    try:
        assert _study(path, tmp_path / "out", servers) == 0
    finally:
        for s in servers:
            s.close()
    rows = read_csv(tmp_path / "out" / "runs.csv")  # in the order the runs finished
    assert [(r["layout"], r["seed"]) for r in rows] == [
        (layout, str(seed)) for seed in range(3) for layout in ("shared", "chat")
    ]


def test_tokens_count_as_turns_end_and_nothing_to_do(table: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    class Watch(Progress):
        def turn(self) -> None:
            super().turn()
            seen.append((self.done, self.tokens_out))

    path = _experiment(tmp_path, seeds=1)
    said = io.StringIO()
    servers: list[Any] = []
    try:
        assert _study(path, tmp_path / "out", servers, Watch(enabled=False)) == 0
        assert _study(path, tmp_path / "out", servers, Progress(stream=said)) == 0
    finally:
        for s in servers:
            s.close()
    assert seen[0][0] == 0 and seen[0][1] > 0  # tokens/s moves before any run ends
    assert said.getvalue().splitlines()[0] == (
        "roundtable: study: nothing to do: all 2 runs complete"
    )
    assert "ETA" not in said.getvalue()
    # Each run's record; no questionnaire, so no answers.json.
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    records = [json.loads((r / "study.json").read_text()) for r in runs]
    assert [r["status"] for r in records] == ["completed"] * 2
    assert all(r["turns"] > 0 and r["seconds"] > 0 and r["made_with"] for r in records)
    assert not any((r / "answers.json").exists() for r in runs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failing_endpoint_is_recorded_and_retried(table: Path, tmp_path: Path) -> None:
    port = _free_port()
    path = _experiment(
        tmp_path, f"endpoints:\n  - {{base_url: 'http://127.0.0.1:{port}/v1', concurrency: 1}}\n"
    )
    out = tmp_path / "out"
    assert _study(path, out, []) == 1  # nothing listens there
    rows = read_csv(out / "runs.csv")
    assert rows and {r["status"] for r in rows} == {"failed"}
    assert all(f"127.0.0.1:{port}" in r["error"] for r in rows)
    said = io.StringIO()
    with BackgroundServer(port=port):
        assert _study(path, out, [], Progress(stream=said)) == 0  # the same command again
    # (the endpoint took no 4th run after 3 failures in a row: that one was never started)
    assert said.getvalue().startswith(
        "roundtable: study: 4 runs: 0 already complete, 0 to resume, 3 to retry, 1 to start\n"
    )
    rows = read_csv(out / "runs.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}


def test_one_failing_endpoint_does_not_stop_the_study(
    table: Path, tmp_path: Path, dummy: Callable[..., BackgroundServer]
) -> None:
    good = dummy()
    path = _experiment(
        tmp_path,
        f"endpoints:\n  - {{base_url: 'http://127.0.0.1:{_free_port()}/v1', concurrency: 1}}\n"
        f"  - {{base_url: '{good.base_url}', concurrency: 1}}\n",
        seeds=4,
    )
    assert _study(path, tmp_path / "out", []) == 1
    statuses = [r["status"] for r in read_csv(tmp_path / "out" / "runs.csv")]
    assert len(statuses) == 8 and "failed" in statuses and statuses.count("completed") >= 5


def test_progress_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("roundtable.study.progress.LINE_EVERY_S", 0.0)
    out = io.StringIO()
    progress = Progress(stream=out)
    progress.start(10, 4)
    for _ in range(9):
        progress.turn()
    progress.tokens(300)
    progress.finished("completed")
    progress.finished("failed")
    progress.tick()
    lines = out.getvalue().splitlines()
    assert lines[0] == "roundtable: study: 10 runs: 4 already complete, 0 to resume, 6 to start"
    assert lines[1].startswith("roundtable: study: 6/10 runs, ")
    assert "turns/s" in lines[1] and "tokens/s" in lines[1] and "1 failed, ETA" in lines[1]


def test_a_study_asks_each_server_once_and_counts_each_text_once(
    table: Path,
    tmp_path: Path,
    dummy: Callable[..., BackgroundServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 6 runs on 4 worker threads: the listing is asked once, not per thread or per run, and
    # the opening lines every run shares are counted once (the tokenizer gives one answer).
    server = dummy()
    path = _experiment(
        tmp_path, f"endpoints:\n  - {{base_url: '{server.base_url}', concurrency: 4}}\n", seeds=3
    )
    counted: list[str] = []
    real = Transport.post_root

    def post_root(self: Transport, where: str, body: dict[str, Any]) -> Any:
        counted.append(body.get("prompt", ""))
        return real(self, where, body)

    monkeypatch.setattr(Transport, "post_root", post_root)
    assert _study(path, tmp_path / "out", []) == 0
    with urllib.request.urlopen(f"{server.root_url}/stats/paths") as response:
        asked = json.load(response)
    assert asked["GET /v1/models"] == 1 and asked.get("GET /props", 0) <= 1
    assert asked["POST /tokenize"] == len(counted) > 0
    assert len(counted) == len(set(counted))
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"completed"}
