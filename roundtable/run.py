"""The run: the one place that wires table, moderator, budget, requests, client and display.

It owns the transcript writer's lifecycle (run line, turns, folds, end line), the loop
over the moderator's plans, and the result; `session.py` starts a run from the command line.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__, human, textstats
from .attempts import Limits, Speaker, take_turn
from .budget import MODERATOR, Budget, Entry, Fold
from .client import ChatClient
from .display import Display, assign_colors
from .errors import InputError, RoundtableError
from .guards import Known, Said, Thresholds, judge
from .markdown import to_markdown
from .metrics import leak_sources
from .moderator import Moderator, Phase, TurnPlan
from .replay import Announcement, Replayed, announcements, replay
from .request import TurnRequest, build_request, chat_message_count, own_part
from .selector import Selector
from .table import Table
from .transcript import TranscriptWriter, Turn, read_records


@dataclass(frozen=True)
class RunResult:
    """What a finished run reports (whole-run totals; `session_turns` were added now)."""

    out_dir: Path
    turns: int
    prompt_tokens: int
    completion_tokens: int
    tokens_source: str
    seconds: float
    folds: int
    session_turns: int

    def line(self) -> str:
        """The result line shown at the end."""
        added = (f" ({self.session_turns} added by this session)"
                 if self.session_turns != self.turns else "")  # fmt: skip
        folds = f", {self.folds} fold{'s' if self.folds != 1 else ''}" if self.folds else ""
        where = self.out_dir / "transcript.md"
        return (f"roundtable: {self.turns} turns{added}, {self.prompt_tokens} prompt + "
                f"{self.completion_tokens} completion tokens ({self.tokens_source}), "
                f"{self.seconds:.1f} s{folds}; transcript: {where}")  # fmt: skip


class Discussion:
    """One run of a table against its clients, shown on a display and stored in out_dir."""

    def __init__(
        self,
        table: Table,
        clients: Mapping[str, ChatClient],
        display: Display,
        out_dir: Path,
        *,
        offline: bool = False,
        summary_client: ChatClient | None = None,
        selector: Selector | None = None,
        seat: human.Seat | None = None,
    ) -> None:
        """`summary_client` writes fold summaries (the table's endpoint; default: the first
        persona's client); `seat` asks the human participants for their turns."""
        self.table = table
        seed = table.settings.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)  # recorded, so the run can be redone
        self.settings = s = replace(table.settings, seed=seed)
        self.clients = dict(clients)
        self.client = self.clients[table.personas[0].name]
        self.summary_client = summary_client or self.client
        self.display = display
        self.out_dir = out_dir
        self.offline = offline
        self.personas = {p.name: p for p in table.personas}
        self.names = list(self.personas)
        self.prompts = table.prompts
        self.moderator = Moderator(
            self.names, table.task.questions, turns=s.turns, wrap_up_turns=s.wrap_up_turns,
            turns_per_topic=s.turns_per_topic, ask_opinion_every=s.ask_opinion_every,
            rng=random.Random(seed), aliases=[[p.full_name] for p in table.personas],
            policy=s.speaker_selection, max_pair_handoffs=s.max_pair_handoffs,
            talkativeness=[p.talkativeness for p in table.personas],
            humans=human.humans(table.personas), human_may_summarise=s.human_may_summarise,
        )  # fmt: skip
        self.seat = seat
        self.selector = selector
        self.system = self.prompts.system()
        by_model = s.fold_summary == "model"
        self._said = Said()
        # The table's endpoint counts the moderator's lines only when the run uses it
        # anyway (for summaries, or a persona's turns): it is not checked otherwise.
        used = by_model or any(c is self.summary_client for c in self.clients.values())
        self.budget = Budget(
            clients=self.clients, summary_client=self.summary_client if used else self.client,
            render_entry=self.prompts.entry, render_recap=self.prompts.recap,
            system=self.system, max_tokens=s.max_tokens, seed=seed, on_fold=self._folded,
            summarize_with=table.task.summarize_instructions if by_model else None,
            on_entry=self._said_entry,
        )  # fmt: skip
        self._speakers = {p.name: Speaker.among(p, table.personas) for p in table.personas}
        # The guards judge by metrics' definitions: the prompts' n-grams as the run line
        # records them, and the n-grams said so far (grown entry by entry, replay included).
        self._prompt_grams = leak_sources(self._fixed_info)
        forms = {p.name: textstats.name_forms(p.name, p.full_name) for p in table.personas}
        self._others = {n: tuple(textstats.other_forms(forms, n)) for n in forms}
        self._forms = {n: tuple(f) for n, f in forms.items()}
        self._thresholds = Thresholds(s.echo_threshold, s.leak_threshold, s.identity_guard)
        self._limits = Limits(guards=s.guard_retries)
        self._writer: TranscriptWriter | None = None
        self._new_counts: list[int | None] = []  # entries added since the last turn record
        self.records: list[dict[str, Any]] | None = None  # the transcript's, once run() ended

    # -- the shared transcript --------------------------------------------------------
    def _line(self, line: Announcement) -> str:
        event, question, speaker = line
        return self.prompts.moderator(
            event, question, speaker, introductions=self.settings.introductions
        )

    def _said_entry(self, entry: Entry) -> None:
        if entry.kind in ("introduction", "turn"):
            self._said.add(entry.text)

    def _add(self, speaker: str, text: str, kind: str) -> None:
        self._new_counts.append(self.budget.entry(speaker, text, kind).tokens)

    def _opening(self) -> list[tuple[str, str, str]]:
        """The entries before turn 0: the moderator's welcome, then the introductions."""
        entries = [(MODERATOR, self._line(("opening", None, None)), "moderator")]
        if self.settings.introductions:
            for p in self.table.personas:
                entries.append((p.name, p.introduction or f"I'm {p.full_name}.", "introduction"))
        return entries

    def _say(self, speaker: str, text: str, kind: str) -> None:
        """Show, record and add a line that is not a model turn (moderator, introduction)."""
        if kind == "moderator":
            self.display.moderator(text)
        else:
            self.display.introduction(speaker, text)
        if self._writer is not None:
            # For readers (transcript.md, exports); a replay renders these lines anew.
            self._writer.event({"type": "entry", "kind": kind, "speaker": speaker, "text": text})
        self._add(speaker, text, kind)

    def _open(self) -> None:
        for speaker, text, kind in self._opening():
            self._say(speaker, text, kind)

    def _folded(self, fold: Fold) -> None:
        if self._writer is not None:
            self._writer.event(fold.to_dict())
        self.display.notice(
            f"roundtable: folded the {fold.entries} oldest entries into a recap to stay "
            f"within the {fold.window}-token context"
        )

    def _select(self) -> str | None:
        """Ask the selector model who speaks next (speaker_selection: llm)."""
        if self.selector is None:
            return None
        candidates = self.moderator.candidates()
        recent = self.budget.shared.entries[-8:]
        choice = self.selector.choose(candidates, [e.rendered for e in recent],
                                      seed=self.settings.seed or 0,
                                      turn=self.moderator.turns_done)  # fmt: skip
        if choice is None:
            self.display.notice("roundtable: the selector gave no valid name; the moderator "
                                "chooses this turn's speaker")  # fmt: skip
        return choice

    def replay_records(
        self,
        records: Sequence[dict[str, Any]],
        before_turn: Callable[[TurnPlan, dict[str, Any]], None] | None = None,
    ) -> Replayed:
        """Rebuild the moderator and the shared transcript from a transcript's records, with
        no model or tokenizer call (see replay.replay for `before_turn`)."""
        jsonl = self.out_dir / "transcript.jsonl"
        return replay(records, self.moderator, self.budget, self._opening, self._line, jsonl,
                      before_turn)  # fmt: skip

    # -- one turn ---------------------------------------------------------------------
    def request(self, plan: TurnPlan, attempt: int = 0, own: str | None = None) -> TurnRequest:
        """The request of attempt `attempt` of a planned model turn, from the shared
        transcript as it stands (exports call it during a replay); `own`: the speaker's
        part, if already rendered."""
        persona = self.personas[plan.speaker]
        if own is None:
            own = own_part(self.prompts, persona, plan, self.settings.layout)
        system = self.system
        if self.settings.layout == "chat":
            system = f"{self.system}\n\n{self.prompts.persona(persona)}"
        return build_request(plan=plan, persona=persona, settings=self.settings,
                             system=system, transcript=self.budget.shared, own=own,
                             names=self.names, counts=self.moderator.counts,
                             attempt=attempt)  # fmt: skip

    def _take_turn(self, plan: TurnPlan, selection: str | None = None) -> Turn:
        persona = self.personas[plan.speaker]
        if persona.human:
            assert self.seat is not None, "a table with a human seat runs with a Seat"
            said = self.seat.take(plan, self.display, self.moderator.addressing.lookup,
                                  self.table.task.summarize_instructions)  # fmt: skip
            self._add(plan.speaker, said.text, "turn")
            counts, self._new_counts = tuple(self._new_counts), []
            return said.turn(plan, counts, selection)
        client = self.clients[plan.speaker]
        layout = self.settings.layout
        own = own_part(self.prompts, persona, plan, layout)
        source = persona.source or persona.name

        def fit() -> int | None:
            counted, sent = own, 2
            if layout == "chat":
                counted = f"{self.prompts.persona(persona)}\n\n{own}"
                sent = chat_message_count(self.budget.shared, plan.speaker)
            room = self.budget.fit(plan.speaker, counted, turn=plan.index, source=source,
                                   messages=sent)  # fmt: skip
            return room.prompt_tokens if room.exact else None

        def compose(attempt: int) -> TurnRequest:
            return self.request(plan, attempt, own)

        known = Known(self._said.grams, self._prompt_grams(plan.speaker),
                      self._others[plan.speaker], self._forms[plan.speaker])  # fmt: skip
        # A summary restates the discussion by design: echo is not held against it
        # (metrics does not count it either).
        thresholds = (replace(self._thresholds, echo=1.0) if plan.phase is Phase.SUMMARY
                      else self._thresholds)  # fmt: skip
        outcome = take_turn(self._speakers[plan.speaker], client, self.budget, self.display,
                            compose, fit, stream=self.settings.stream, limits=self._limits,
                            judge=lambda text: judge(text, known, thresholds))  # fmt: skip
        self._add(plan.speaker, outcome.text, "turn")
        counts, self._new_counts = tuple(self._new_counts), []
        result = outcome.completion
        return Turn(
            index=plan.index, speaker=plan.speaker, phase=plan.phase.value, topic=plan.topic,
            text=outcome.text, temperature=self.settings.temperature(persona.creativity),
            prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            latency_s=round(result.latency_s, 4), finish_reason=outcome.finish_reason,
            tokens_source=result.tokens_source, model=client.model, attempts=outcome.attempts,
            guards=outcome.guards, seed=outcome.seed, entry_tokens=counts,
            chosen_by=plan.reason, selection=selection,
        )  # fmt: skip

    # -- the whole run ----------------------------------------------------------------
    def _where(self, client: ChatClient) -> str:
        return "offline" if self.offline else client.where

    def run_info(self, models: Mapping[str, str]) -> dict[str, Any]:
        """The first transcript line: everything needed to understand or redo the run."""
        fixed = self._fixed_info
        return {
            "version": __version__,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "table": fixed["table"],
            "model": self.client.model,
            "models": dict(models),
            "base_url": self._where(self.client),
            "summary_client": self._where(self.summary_client),
            "offline": self.offline,
            "context_window": self.budget.window,
            **{k: v for k, v in fixed.items() if k != "table"},
        }

    @functools.cached_property
    def _fixed_info(self) -> dict[str, Any]:
        """The parts of the run line that the run does not change (made once: the guards'
        prompt n-grams are taken from them too)."""
        task = self.table.task
        return {
            "table": str(self.table.directory.resolve()),
            "settings": self.settings.to_dict(),
            "participants": [p.to_dict() for p in self.table.personas],
            "questions": list(task.questions),
            "task": {
                "context": task.context,
                "discuss_instructions": task.discuss_instructions,
                "summarize_instructions": task.summarize_instructions,
            },  # fmt: skip
            "prompts": self.prompts.sources(),
        }

    def _endpoints(self) -> list[ChatClient]:
        used = list(self.clients.values())
        if self.settings.fold_summary == "model":
            used.append(self.summary_client)
        return list({id(c): c for c in used}.values())

    def _find_window(self) -> int | None:
        if self.settings.context_window:
            return self.settings.context_window
        known = [w for c in self._endpoints() if (w := c.context_window())]
        return min(known) if known else None

    def run(self, resume: dict[str, Any] | None = None) -> RunResult:
        """Run the discussion to its end, writing the transcript as it goes.

        With `resume` (from `load_run`), carry on an interrupted run from its last
        complete turn, its state rebuilt from the records alone.
        """
        selector = [self.selector.client] if self.selector else []
        for client in {id(c): c for c in [*self._endpoints(), *selector]}.values():
            # Every endpoint is checked before turn 1: a persona's own server that is
            # down is found now, not an hour into the run.
            client.probe()
        models = {name: c.resolve_model() for name, c in self.clients.items()
                  if not self.personas[name].human}  # fmt: skip
        jsonl = self.out_dir / "transcript.jsonl"
        done = Replayed(None, 0, 0, 0, set())
        if resume is None:
            if jsonl.exists():
                raise InputError(
                    f"{self.out_dir}: already holds a transcript; choose another --out"
                )
            self.budget.window = self._find_window()
        else:
            # The recorded window, so folds happen where they happened before.
            self.budget.window = resume["run"].get("context_window") or self._find_window()
            records = resume.get("records") or [resume["run"], *resume["turns"]]
            done = self.replay_records(records)
        self.display.set_colors(self.names, assign_colors([p.color for p in self.table.personas]))
        self._writer = writer = TranscriptWriter(jsonl)
        status, error = "failed", ""
        totals = Replayed(done.previous, 0, 0, 0, set(done.sources))
        clock = dt.datetime.now()
        try:
            if resume is None:
                writer.run(self.run_info(models))
                self._open()
            else:
                writer.resume(done.turns, models, self._where(self.client))
                if done.turns == 0:
                    # Stopped before its first turn: the replay had no turn to rebuild the
                    # opening with, so it goes into the transcript now (counted with turn 0).
                    for speaker, text, kind in self._opening():
                        self._add(speaker, text, kind)
            while True:
                selection = self._select() if self.moderator.wants_selection() else None
                plan = self.moderator.plan(selection)
                if plan is None:
                    break
                for line in announcements(plan, totals.previous):
                    self._say(MODERATOR, self._line(line), "moderator")
                turn = self._take_turn(plan, selection)
                writer.turn(turn)
                self.moderator.record(turn.text, turn.handoff)
                totals.turns += 1
                totals.prompt_tokens += turn.prompt_tokens
                totals.completion_tokens += turn.completion_tokens
                if not turn.human:  # a person's words are not counted by any model
                    totals.sources.add(turn.tokens_source)
                totals.previous = plan.phase
            status = "completed"
        except (KeyboardInterrupt, BrokenPipeError):
            status = "interrupted"
            raise
        except RoundtableError as exc:
            error = str(exc)
            raise
        finally:
            writer.end(status, **({"error": error} if error else {}))
            writer.close()
            self._writer = None
            self.records = read_records(jsonl)
            (self.out_dir / "transcript.md").write_text(to_markdown(self.records), encoding="utf-8")
        return RunResult(
            self.out_dir,
            done.turns + totals.turns,
            done.prompt_tokens + totals.prompt_tokens,
            done.completion_tokens + totals.completion_tokens,
            "/".join(sorted(totals.sources)) or "none",
            (dt.datetime.now() - clock).total_seconds(),
            self.budget.shared.folds,
            totals.turns,
        )
