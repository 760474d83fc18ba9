"""The run loop: the one place that wires table, moderator, prompts, client and display."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .config import Settings, load_settings
from .display import Display, assign_colors
from .errors import InputError, RoundtableError, ServerError
from .llm import ChatClient, Completion, IncompleteStream
from .moderator import Moderator, Phase, TurnPlan
from .personas import Persona, load_personas
from .prompts import Prompts
from .reply import ReplyFilter
from .task import Task, load_task
from .transcript import TranscriptWriter, Turn, read_records, to_markdown

STREAM_ATTEMPTS = 3  # the last attempt is made without streaming
MAX_STOP_SEQUENCES = 4  # OpenAI accepts at most four
MODERATOR = "Moderator"


@dataclass(frozen=True)
class Table:
    """A validated table directory: personas, task, settings and templates."""

    directory: Path
    personas: tuple[Persona, ...]
    task: Task
    settings: Settings
    config_file: Path | None
    prompts: Prompts


def load_table(
    directory: Path,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Table:
    """Load and validate everything a run needs, before any model call."""
    if not directory.is_dir():
        raise InputError(f"{directory}: table directory not found; pass --table DIR")
    if config_file is not None and not config_file.is_file():
        raise InputError(f"{config_file}: config file not found (--config)")
    settings, used = load_settings(directory, config_file, env, flags)
    personas = tuple(load_personas(directory / "participants"))
    task = load_task(directory / "task")
    prompts = Prompts(directory, task, personas)
    return Table(directory, personas, task, settings, used, prompts)


@dataclass
class RunResult:
    """What a finished run reports."""

    out_dir: Path
    turns: int
    prompt_tokens: int
    completion_tokens: int
    tokens_source: str
    seconds: float


def default_out_dir(table_dir: Path) -> Path:
    """outputs/<timestamp>/ inside the table, made unique."""
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    base = table_dir / "outputs" / stamp
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{stamp}-{n}")
    return candidate


def _request_seed(seed: int, index: int) -> int:
    # A different, reproducible sampling seed for every turn of a seeded run.
    return (seed * 1_000_003 + index) % 2**31


def _shower(display: Display, reply: ReplyFilter) -> Callable[[str], None]:
    """Stream deltas through the reply filter to the display."""

    def show(delta: str) -> None:
        display.text(reply.feed(delta))

    return show


class Discussion:
    """One run of a table against a client, shown on a display and stored in out_dir."""

    def __init__(
        self,
        table: Table,
        client: ChatClient,
        display: Display,
        out_dir: Path,
        *,
        offline: bool = False,
    ) -> None:
        self.table = table
        seed = table.settings.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)  # recorded, so the run can be redone
        self.settings = replace(table.settings, seed=seed)
        self.client = client
        self.display = display
        self.out_dir = out_dir
        self.offline = offline
        self.personas = {p.name: p for p in table.personas}
        self.prompts = table.prompts
        self.moderator = Moderator(
            [p.name for p in table.personas],
            table.task.questions,
            turns=self.settings.turns,
            wrap_up_turns=self.settings.wrap_up_turns,
            turns_per_topic=self.settings.turns_per_topic,
            ask_opinion_every=self.settings.ask_opinion_every,
            rng=random.Random(seed),
            aliases=[[p.full_name] for p in table.personas],
        )
        self.system = self.prompts.system()
        self._entries: list[str] = []  # the shared transcript, one rendered entry each
        self._shared = ""  # the entries joined (kept incrementally: append-only)

    # -- the shared transcript ------------------------------------------------------
    def _add_entry(self, speaker: str, text: str, kind: str) -> None:
        entry = self.prompts.entry(speaker, text, kind)
        self._entries.append(entry)
        self._shared = f"{self._shared}\n\n{entry}" if self._shared else entry

    def _say(self, event: str, question: str | None = None, speaker: str | None = None) -> None:
        text = self.prompts.moderator(event, question, speaker)
        self.display.moderator(text)
        self._add_entry(MODERATOR, text, "moderator")

    def messages(self, plan: TurnPlan) -> list[dict[str, str]]:
        """The request for a turn: shared text first, the speaker's part last."""
        persona = self.personas[plan.speaker]
        if plan.phase is Phase.SUMMARY:
            own = self.prompts.summary(persona)
        else:
            own = self.prompts.turn(persona, plan)
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{self._shared}\n\n{own}"},
        ]

    def _stops(self, speaker: str) -> list[str]:
        others = [n for n in self.personas if n != speaker]
        # When there are more tags than a server accepts, send the most active
        # speakers' (the likeliest to be imitated); the reply filter catches the rest.
        others.sort(key=lambda n: -self.moderator.counts[n])
        return [f"\n{n}:" for n in [*others, MODERATOR]][:MAX_STOP_SEQUENCES]

    # -- one turn ---------------------------------------------------------------------
    def _announce(self, plan: TurnPlan, previous: Phase | None) -> None:
        if plan.new_topic:
            self._say("topic", plan.topic)
        elif plan.phase is Phase.WRAP_UP and previous is not Phase.WRAP_UP:
            self._say("wrap_up")
        elif plan.phase is Phase.SUMMARY:
            self._say("summary", speaker=plan.speaker)

    def _call(self, plan: TurnPlan, messages: list[dict[str, str]]) -> tuple[Completion, str]:
        persona = self.personas[plan.speaker]
        others = [n for n in self.personas if n != plan.speaker] + [MODERATOR]
        temperature = self.settings.temperature(persona.creativity)
        stop = self._stops(plan.speaker)
        seed = _request_seed(self.settings.seed or 0, plan.index)
        self.display.prompt(
            messages,
            {"temperature": temperature, "max_tokens": self.settings.max_tokens, "stop": stop,
             "seed": seed},
        )  # fmt: skip
        note = {Phase.WRAP_UP: "closing", Phase.SUMMARY: "summary"}.get(plan.phase, "")
        attempt = 0
        asked_again = False
        while attempt < STREAM_ATTEMPTS:
            attempt += 1
            stream = self.settings.stream and attempt < STREAM_ATTEMPTS
            reply = ReplyFilter([persona.name, persona.full_name], others)
            self.display.begin_turn(persona.name, note)
            try:
                result = self.client.complete(
                    messages,
                    temperature=temperature,
                    max_tokens=self.settings.max_tokens,
                    stop=stop,
                    seed=seed,
                    stream=stream,
                    on_text=_shower(self.display, reply),
                )
            except IncompleteStream:
                left = STREAM_ATTEMPTS - attempt
                how = "without streaming" if left == 1 or not self.settings.stream else "again"
                self.display.abort_turn(f"the reply stream broke off; asking {how}")
                continue
            self.display.text(reply.finish())
            if not reply.text and not asked_again:
                # Small models sometimes answer as someone else from the first word;
                # one more try with another sampling seed usually gives a real turn.
                asked_again = True
                attempt -= 1
                seed = (seed + 1) % 2**31
                self.display.abort_turn(
                    "the reply was empty or spoke for someone else; asking again"
                )
                continue
            tokens = f"{result.prompt_tokens}+{result.completion_tokens} tokens"
            self.display.end_turn(f"{tokens}, {result.latency_s:.1f} s")
            return result, reply.text
        raise ServerError(
            f"{self.client.where}: the reply stream broke off {STREAM_ATTEMPTS} times"
        )

    def _take_turn(self, plan: TurnPlan) -> Turn:
        messages = self.messages(plan)
        result, text = self._call(plan, messages)
        persona = self.personas[plan.speaker]
        return Turn(
            index=plan.index,
            speaker=plan.speaker,
            phase=plan.phase.value,
            topic=plan.topic,
            text=text,
            temperature=self.settings.temperature(persona.creativity),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_s=round(result.latency_s, 4),
            finish_reason=result.finish_reason,
            tokens_source=result.tokens_source,
        )

    # -- the whole run --------------------------------------------------------------
    def run_info(self, model: str) -> dict[str, Any]:
        """The first transcript line: everything needed to understand or redo the run."""
        return {
            "version": __version__,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "table": str(self.table.directory.resolve()),
            "model": model,
            "base_url": "offline" if self.offline else self.client.where,
            "offline": self.offline,
            "settings": self.settings.to_dict(),
            "participants": [p.to_dict() for p in self.table.personas],
            "questions": list(self.table.task.questions),
        }

    def run(self) -> RunResult:
        """Run the discussion to its end, writing the transcript as it goes."""
        model = self.client.resolve_model()
        jsonl = self.out_dir / "transcript.jsonl"
        if jsonl.exists():
            raise InputError(f"{self.out_dir}: already holds a transcript; choose another --out")
        names = list(self.personas)
        self.display.set_colors(names, assign_colors([p.color for p in self.table.personas]))
        writer = TranscriptWriter(jsonl)
        status = "failed"
        error = ""
        totals = [0, 0]
        sources: set[str] = set()
        clock = dt.datetime.now()
        try:
            writer.run(self.run_info(model))
            self._say("opening")
            if self.settings.introductions:
                for p in self.table.personas:
                    intro = p.introduction or f"I'm {p.full_name}."
                    self.display.introduction(p.name, intro)
                    self._add_entry(p.name, intro, "introduction")
            previous: Phase | None = None
            while (plan := self.moderator.plan()) is not None:
                self._announce(plan, previous)
                turn = self._take_turn(plan)
                writer.turn(turn)
                self._add_entry(turn.speaker, turn.text, "turn")
                self.moderator.record(turn.text)
                totals[0] += turn.prompt_tokens
                totals[1] += turn.completion_tokens
                sources.add(turn.tokens_source)
                previous = plan.phase
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except RoundtableError as exc:
            error = str(exc)
            raise
        finally:
            writer.end(status, **({"error": error} if error else {}))
            writer.close()
            (self.out_dir / "transcript.md").write_text(
                to_markdown(read_records(jsonl)), encoding="utf-8"
            )
        return RunResult(
            self.out_dir,
            self.moderator.turns_done + 1,
            totals[0],
            totals[1],
            "/".join(sorted(sources)) or "none",
            (dt.datetime.now() - clock).total_seconds(),
        )
