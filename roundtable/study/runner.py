"""Running a study: every run concurrently within its endpoint's limit, resumable.

Each endpoint has a thread pool as large as its concurrency; its workers take runs from
one shared queue, so a faster endpoint takes more. A run is an ordinary run directory
(`runs/<id>/`) driven by run.Discussion with a quiet display; its study.json records the
outcome. Ctrl-C (or SIGTERM) sets a stop flag that each discussion sees at its next
display call (a streamed chunk at most), and each questionnaire before its next request,
so in-flight runs end as interrupted.
"""

from __future__ import annotations

import io
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..client import UNWATCHED_GATHER_S, SharedFacts
from ..display import Display
from ..errors import InputError, RoundtableError
from ..run import Discussion
from ..selector import Selector
from ..table import Clients, Table, build_clients, load_run
from ..transcript import RunLock, read_records
from .plan import PlannedRun, TableCache, build_table, interleave
from .progress import Progress
from .provenance import check_recorded
from .questionnaire import Questionnaire
from .results import ANSWERS_FILE, RUN_FILE, Results, read_json, write_json
from .spec import Endpoint, Experiment

FAILURES_TO_DISABLE = 3  # an endpoint whose runs fail this often in a row takes no more
_COMPLETION = re.compile(r"\+(\d+) tokens")


class _Stop(Display):
    """A quiet display into memory that ends the run when the study is stopped."""

    def __init__(self, stop: threading.Event, progress: Progress) -> None:
        super().__init__(io.StringIO(), io.StringIO(), color=False, quiet=True)
        self._stop, self._progress = stop, progress

    def _check(self) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # Discussion.run records the run as interrupted

    def begin_turn(self, name: str, note: str = "") -> None:
        """A turn starts (unless the study is stopping)."""
        self._check()
        self.out = io.StringIO()  # keep only the current turn in memory
        super().begin_turn(name, note)

    def text(self, delta: str) -> None:
        """Part of a reply: only the stop flag is checked (a quiet display shows nothing, so
        the reply is not run through the terminal sanitizer chunk by chunk)."""
        self._check()

    def end_turn(self, footer: str = "") -> None:
        """A turn ends: counted, with its tokens, for the progress bar."""
        super().end_turn(footer)
        # The footer is "<prompt>+<completion> tokens, ..." (attempts.py): counting here
        # shows tokens/s while runs are in flight, not only as each run ends.
        tokens = _COMPLETION.search(footer)
        self._progress.tokens(int(tokens[1]) if tokens else 0)
        self._progress.turn()


@dataclass
class _Endpoint:
    spec: Endpoint
    url: str
    offline: bool
    failures_in_a_row: int = 0
    disabled: bool = False
    structured: dict[int, bool] = field(default_factory=dict)


@dataclass
class StudyRunner:
    """Runs the planned runs of one experiment into `out`."""

    experiment: Experiment
    runs: Sequence[PlannedRun]
    out: Path
    endpoints: list[_Endpoint]
    progress: Progress
    stop: threading.Event = field(default_factory=threading.Event)
    on_finished: Callable[[dict[str, Any]], None] | None = None  # tests: stop mid-study
    gather: float = UNWATCHED_GATHER_S  # nobody watches a study's streams (ChatClient)

    def __post_init__(self) -> None:
        self.results = Results(self.out, list(self.experiment.factors))
        self.failed: list[tuple[str, str]] = []
        self.tables = TableCache(self.experiment)
        # What each server said (models, window, tokenizer, token counts), asked once for
        # the whole study rather than once per worker thread.
        self.facts = SharedFacts()
        self._local = threading.local()  # each worker thread's clients
        self._lock = threading.Lock()

    # -- one run ------------------------------------------------------------------------
    def _record(self, run: PlannedRun, record: dict[str, Any], **values: Any) -> dict[str, Any]:
        """Update the run's study.json record (`record`: as read when the run started, or
        empty) with `values`, and write it."""
        path = self.out / "runs" / run.id / RUN_FILE
        if not record:
            record.update(
                id=run.id,
                condition=run.values,
                seed=run.seed,
                made_with=self.tables.made_with(run),  # checked when the study runs again
            )
        record.update(values)
        path.parent.mkdir(parents=True, exist_ok=True)  # the lock removes an unused one
        write_json(path, record)
        return record

    def _table(self, run: PlannedRun, where: _Endpoint) -> tuple[Table, dict[str, Any] | None]:
        run_dir = self.out / "runs" / run.id
        jsonl = run_dir / "transcript.jsonl"
        if jsonl.is_file():
            # Recorded before (interrupted or failed, even before its first turn): resume.
            flags = {} if where.offline else {"base_url": where.url}
            return load_run(run_dir, flags)
        table = self.tables.table(run)
        s = table.settings
        model = s.model if "model" in self.experiment.factors else (where.spec.model or s.model)
        settings = replace(
            s,
            base_url=None if where.offline else where.url,
            model=model,
            api_key_env=where.spec.api_key_env or s.api_key_env,
        )
        return replace(table, settings=settings), None

    def _execute(
        self, run: PlannedRun, where: _Endpoint
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """Run (or resume) one run; its study.json record, and its transcript's records."""
        run_dir = self.out / "runs" / run.id
        lock = None
        clients: Clients | None = None
        started = time.perf_counter()
        record = read_json(run_dir / RUN_FILE, {})
        record = record if isinstance(record, dict) else {}
        before = record.get("seconds") or 0.0
        status, error = "failed", ""
        records: list[dict[str, Any]] | None = None  # the transcript's, once read
        try:
            lock = RunLock(run_dir)
            table, resume = self._table(run, where)
            clients = self._clients(table, where)
            for c in clients.distinct():
                where.structured.setdefault(id(c), where.spec.structured)
            self._record(run, record, endpoint=where.spec.name, status="running", error="")
            questionnaire = Questionnaire(
                self.experiment.questionnaire, where.structured, stop=self.stop
            )
            asking = bool(questionnaire.items)  # else no answers.json at all
            answers: list[dict[str, Any]] = read_json(run_dir / ANSWERS_FILE, []) if asking else []
            asked = {(a["persona"], a["item"], a["when"]) for a in answers}
            if asking and not any(w == "before" for *_, w in asked) and resume is None:
                answers += self._ask(questionnaire, table, clients.personas, "before", run, ())
                write_json(run_dir / ANSWERS_FILE, answers)
            if resume is None or resume["status"] != "completed":
                selector = Selector(clients.selector) if clients.selector else None
                discussion = Discussion(
                    table,
                    clients.personas,
                    _Stop(self.stop, self.progress),
                    run_dir,
                    offline=where.offline,
                    summary_client=clients.table,
                    selector=selector,
                )
                discussion.run(resume)
                records = discussion.records
            after = any("after" in item.when for item in questionnaire.items)
            if after and not any(w == "after" for *_, w in asked):
                if self.stop.is_set():
                    raise KeyboardInterrupt  # the answers are asked on the next invocation
                if records is None:
                    records = read_records(run_dir / "transcript.jsonl")
                answers += self._ask(questionnaire, table, clients.personas, "after", run, records)
                write_json(run_dir / ANSWERS_FILE, answers)
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
        except RoundtableError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in one run must not take the study down with it
            error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            if lock is not None:
                lock.release()
        turns = prompt = completion = 0
        model = None
        if records is None and (run_dir / "transcript.jsonl").is_file():
            records = read_records(run_dir / "transcript.jsonl")
        if records is not None:
            turn_records = [r for r in records if r.get("type") == "turn"]
            turns = len(turn_records)
            prompt = sum(int(r.get("prompt_tokens") or 0) for r in turn_records)
            completion = sum(int(r.get("completion_tokens") or 0) for r in turn_records)
            model = records[0].get("model") if records else None
        seconds = round(before + time.perf_counter() - started, 3)
        record = self._record(
            run,
            record,
            endpoint=where.spec.name,
            model=model,
            status=status,
            turns=turns,
            prompt_tokens=prompt,
            completion_tokens=completion,
            seconds=seconds,
            error=error,
        )
        return record, records

    def _clients(self, table: Table, where: _Endpoint) -> Clients:
        """This worker thread's clients for the table on the endpoint, made once: a client
        costs tens of ms of CPU to make (TLS context), more than a turn's own work."""
        cache: dict[str, Clients] = self._local.__dict__.setdefault("clients", {})
        who = [(p.name, p.base_url, p.model, p.api_key_env) for p in table.personas]
        key = repr((where.spec.name, replace(table.settings, seed=None), who))
        if key not in cache:
            cache[key] = build_clients(
                table, where.url, offline=where.offline, facts=self.facts, gather=self.gather
            )
        return cache[key]

    def _ask(
        self,
        questionnaire: Questionnaire,
        table: Table,
        clients: Any,
        when: str,
        run: PlannedRun,
        records: Any,
    ) -> list[dict[str, Any]]:
        if not any(when in item.when for item in questionnaire.items):
            return []
        rows = questionnaire.ask(table, clients, when, run.seed, records)
        return [{"run": run.id, **row} for row in rows]

    # -- the workers --------------------------------------------------------------------
    def _worker(self, where: _Endpoint, todo: queue.Queue[PlannedRun]) -> None:
        try:
            self._work(where, todo)
        finally:
            for clients in self._local.__dict__.pop("clients", {}).values():
                clients.close()

    def _work(self, where: _Endpoint, todo: queue.Queue[PlannedRun]) -> None:
        while not self.stop.is_set() and not where.disabled:
            try:
                run = todo.get_nowait()
            except queue.Empty:
                return
            record, records = self._execute(run, where)
            with self._lock:
                failed = record["status"] == "failed"
                where.failures_in_a_row = where.failures_in_a_row + 1 if failed else 0
                if where.failures_in_a_row >= FAILURES_TO_DISABLE and not where.disabled:
                    where.disabled = True
                    self.progress.write(
                        f"roundtable: study: endpoint {where.spec.name} failed "
                        f"{FAILURES_TO_DISABLE} runs in a row; it takes no more"
                    )
                if failed:
                    self.failed.append((run.id, record["error"]))
            if record["status"] != "interrupted":
                self.results.finished(record, self.out / "runs" / run.id, records)
                self.progress.finished(record["status"])
            if self.on_finished is not None:
                self.on_finished(record)

    def execute(self) -> int:
        """Run every run not completed yet; returns the exit code."""
        check_recorded(self.out, self.runs, self.tables.made_with)
        (self.out / "runs").mkdir(parents=True, exist_ok=True)
        write_json(self.out / "study.json", _study_info(self.experiment, self.runs))
        todo: queue.Queue[PlannedRun] = queue.Queue()
        done = resume = retry = 0
        for run in interleave(self.runs):  # conditions share the server's load evenly
            status = read_json(self.out / "runs" / run.id / RUN_FILE, {}).get("status")
            if status == "completed":
                done += 1
            else:
                resume += status in ("interrupted", "running")  # "running": the process died
                retry += status == "failed"
                todo.put(run)
        # The finished runs' rows now; the others add theirs as they end.
        self.results.rebuild(leave_out={r.id for r in list(todo.queue)})
        self.progress.start(len(self.runs), done, resume, retry)
        pools = [
            ThreadPoolExecutor(e.spec.concurrency, thread_name_prefix=f"study-{e.spec.name}")
            for e in self.endpoints
        ]
        futures = [
            pool.submit(self._worker, e, todo)
            for pool, e in zip(pools, self.endpoints, strict=True)
            for _ in range(e.spec.concurrency)
        ]
        interrupted = False
        try:
            while not all(f.done() for f in futures):
                time.sleep(0.2)
                self.progress.tick()
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
            self.progress.write(
                "roundtable: study: stopping; in-flight runs are saved as interrupted"
            )
        for pool in pools:
            pool.shutdown(wait=True)
        for f in futures:
            f.result()  # a bug in the worker loop itself is not swallowed
        self.progress.close()
        left = todo.qsize()
        if interrupted or self.stop.is_set() or left:
            self.results.rebuild()  # interrupted and unstarted runs get their rows too
        return self._summary(interrupted or self.stop.is_set(), left)

    def _summary(self, interrupted: bool, left: int) -> int:
        for run_id, error in self.failed:
            self.progress.write(f"roundtable: study: failed: {run_id}: {error}")
        where = f"{self.out}/runs.csv"
        if interrupted:
            self.progress.write(
                f"roundtable: study interrupted; finished runs are in {where}. "
                "Run the same command again to carry on."
            )
            return 130
        if self.failed or left:
            self.progress.write(
                f"roundtable: study: {len(self.failed)} run(s) failed, {left} not "
                "started; run the same command again to retry them"
            )
            return 1
        self.progress.write(f"roundtable: study complete: {len(self.runs)} runs; {where}")
        return 0


def _study_info(experiment: Experiment, runs: Sequence[PlannedRun]) -> dict[str, Any]:
    return {
        "name": experiment.name,
        "experiment": str(experiment.path.resolve()),
        "factors": {k: list(v) for k, v in experiment.factors.items()},
        "seeds": list(experiment.seeds),
        "runs": len(runs),
        "questionnaire": [vars(i) for i in experiment.questionnaire],
    }


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a study the way Ctrl-C does


def make_runner(
    experiment: Experiment,
    runs: Sequence[PlannedRun],
    out: Path,
    *,
    offline: bool = False,
    progress: Progress | None = None,
    servers: list[Any] | None = None,
) -> StudyRunner:
    """A runner for the study; offline endpoints get a dummy server each (into `servers`)."""
    specs = list(experiment.endpoints)
    if not specs:
        table = build_table(experiment, runs[0]) if runs else None
        url = table.settings.base_url if table else None
        specs = [Endpoint("default", url)]
    endpoints = []
    for spec in specs:
        if offline or spec.base_url is None:
            from dummy_server import BackgroundServer

            server = BackgroundServer()
            if servers is not None:
                servers.append(server)
            endpoints.append(_Endpoint(spec, server.base_url, True))
        else:
            endpoints.append(_Endpoint(spec, spec.base_url, False))
    return StudyRunner(experiment, runs, out, endpoints, progress or Progress(enabled=False))


def run_study(
    experiment: Experiment,
    runs: Sequence[PlannedRun],
    out: Path,
    *,
    offline: bool = False,
    progress: bool = True,
) -> int:
    """Run a study from the command line; returns the exit code."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: not a directory; choose another --out")
    servers: list[Any] = []
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        runner = make_runner(
            experiment,
            runs,
            out,
            offline=offline,
            servers=servers,
            progress=Progress(enabled=progress, stream=sys.stderr),
        )
        code = runner.execute()
        from .report import build

        if code != 130 and any((out / "runs").iterdir()):
            runner.progress.write(f"roundtable: report: {build(out)}")
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
        for server in servers:
            server.close()
