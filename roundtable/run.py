"""The run loop: the one place that wires table, moderator, prompts, client and display."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .client import ChatClient, Completion, ContextOverflow, IncompleteStream, estimate_tokens
from .context import Entry, SharedTranscript
from .display import Display, assign_colors
from .errors import InputError, RoundtableError, ServerError
from .moderator import Moderator, Phase, TurnPlan
from .reply import ReplyFilter
from .table import Table
from .transcript import TranscriptWriter, Turn, read_records, to_markdown

STREAM_ATTEMPTS = 3  # the last attempt is made without streaming
EMPTY_RETRIES = 3  # new seeds tried when a reply comes back empty or as someone else
OVERFLOW_ATTEMPTS = 2  # folds-and-retries after a server says the context is full
MAX_STOP_SEQUENCES = 4  # OpenAI accepts at most four
MODERATOR = "Moderator"
MESSAGE_OVERHEAD = 16  # chat-template tokens around two messages
ESTIMATE_MARGIN = 1.15  # counts estimated from characters are padded by this much


@dataclass
class RunResult:
    """What a finished run reports."""

    out_dir: Path
    turns: int
    prompt_tokens: int
    completion_tokens: int
    tokens_source: str
    seconds: float
    folds: int


def _request_seed(seed: int, index: int) -> int:
    # A different, reproducible sampling seed for every turn of a seeded run.
    return (seed * 1_000_003 + index) % 2**31


def _shower(display: Display, reply: ReplyFilter) -> Callable[[str], bool]:
    """Stream deltas through the reply filter to the display; False once it is cut."""

    def show(delta: str) -> bool:
        display.text(reply.feed(delta))
        return not reply.done

    return show


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
    ) -> None:
        self.table = table
        seed = table.settings.seed
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)  # recorded, so the run can be redone
        self.settings = replace(table.settings, seed=seed)
        self.clients = dict(clients)
        self.client = self.clients[table.personas[0].name]
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
        self.shared = SharedTranscript(self.prompts.entry, self.prompts.recap, self.count)
        self.window: int | None = None
        self._system_tokens: int | None = None
        self._own_tokens: tuple[str, int] = ("", 0)
        self._counted_by_server = True

    # -- tokens and the context window --------------------------------------------------
    def count(self, text: str) -> int:
        """Tokens in text: the server's tokenizer when it has one, else a padded estimate."""
        counted = self.client.count_tokens(text)
        if counted is not None:
            return counted
        self._counted_by_server = False
        return int(estimate_tokens(text) * ESTIMATE_MARGIN) + 1

    def _find_window(self) -> int | None:
        if self.settings.context_window:
            return self.settings.context_window
        windows = [c.context_window() for c in {id(c): c for c in self.clients.values()}.values()]
        known = [w for w in windows if w]
        return min(known) if known else None

    def _fit(self, own: str) -> int | None:
        """Fold the transcript if this request would not fit; return its prompt tokens."""
        if self.window is None:
            return None
        if self._system_tokens is None:
            self._system_tokens = self.count(self.system)
        if self._own_tokens[0] != own:
            # A turn's own part is the same for every attempt: count it once.
            self._own_tokens = (own, self.count(own))
        fixed = self._system_tokens + self._own_tokens[1] + MESSAGE_OVERHEAD
        margin = 8 + self.window // 50
        room = self.window - self.settings.max_tokens - fixed - margin
        if room < 64:
            raise InputError(
                f"context window {self.window}: too small for the prompts ({fixed} tokens) plus "
                f"max_tokens ({self.settings.max_tokens}); raise --context-window or lower "
                "--max-tokens"
            )
        if self.shared.tokens > room:
            # One large step (to half the room) so the cached prefix survives many turns.
            folded = self.shared.fold(room // 2, room // 4, self._summarizer())
            if folded:
                self.display.notice(
                    f"roundtable: folded the {folded} oldest entries into a recap to stay "
                    f"within the {self.window}-token context"
                )
        return fixed + self.shared.tokens

    def _summarizer(self) -> Callable[[str, list[Entry]], str | None] | None:
        if self.settings.fold_summary != "model":
            return None

        def summarize(recap: str, folded: list[Entry]) -> str | None:
            text = "\n\n".join([recap, *(e.rendered for e in folded)]).strip()
            ask = (
                f"{text}\n\n---\n{self.table.task.summarize_instructions}\n"
                "Summarise only the part of the discussion above, in under 120 words."
            )
            try:
                result = self.client.complete(
                    [{"role": "system", "content": self.system}, {"role": "user", "content": ask}],
                    temperature=0.2,
                    max_tokens=min(200, self.settings.max_tokens),
                    seed=self.settings.seed,
                    stream=False,
                )
            except (RoundtableError, IncompleteStream, ContextOverflow):
                return None  # the extractive recap stands in
            return result.text.strip() or None

        return summarize

    # -- the shared transcript ------------------------------------------------------
    def _say(self, event: str, question: str | None = None, speaker: str | None = None) -> None:
        text = self.prompts.moderator(event, question, speaker)
        self.display.moderator(text)
        self.shared.add(MODERATOR, text, "moderator")

    def _own_part(self, plan: TurnPlan) -> str:
        persona = self.personas[plan.speaker]
        if plan.phase is Phase.SUMMARY:
            return self.prompts.summary(persona)
        return self.prompts.turn(persona, plan)

    def messages(self, plan: TurnPlan, own: str | None = None) -> list[dict[str, str]]:
        """The request for a turn: shared text first, the speaker's part last."""
        own = self._own_part(plan) if own is None else own
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{self.shared.text}\n\n{own}"},
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

    def _call(self, plan: TurnPlan) -> tuple[Completion, str, str | None]:
        """Ask for one turn until a usable reply comes; return it, its text and cut reason."""
        persona = self.personas[plan.speaker]
        client = self.clients[plan.speaker]
        others = [n for n in self.personas if n != plan.speaker] + [MODERATOR]
        headers = [p.full_name for p in self.personas.values() if p.name != plan.speaker]
        temperature = self.settings.temperature(persona.creativity)
        stop = self._stops(plan.speaker)
        seed = persona.seed
        if seed is None:
            seed = _request_seed(self.settings.seed or 0, plan.index)
        sampling = {**self.settings.sampling(), **persona.sampling()}
        note = {Phase.WRAP_UP: "closing", Phase.SUMMARY: "summary"}.get(plan.phase, "")
        own = self._own_part(plan)
        attempt = overflows = empty = 0
        while attempt < STREAM_ATTEMPTS:
            attempt += 1
            hint = self._fit(own)
            messages = self.messages(plan, own)
            self.display.prompt(
                messages,
                {"model": client.model, "temperature": temperature,
                 "max_tokens": self.settings.max_tokens, "stop": stop, "seed": seed, **sampling},
            )  # fmt: skip
            reply = ReplyFilter([persona.name, persona.full_name], others, headers)
            self.display.begin_turn(persona.name, note)
            try:
                result = client.complete(
                    messages,
                    temperature=temperature,
                    max_tokens=self.settings.max_tokens,
                    stop=stop,
                    seed=seed,
                    stream=self.settings.stream and attempt < STREAM_ATTEMPTS,
                    sampling=sampling,
                    on_text=_shower(self.display, reply),
                    prompt_tokens_hint=hint if self._counted_by_server else None,
                )
            except IncompleteStream:
                self.display.abort_turn("the reply stream broke off; asking again")
                continue
            except ContextOverflow as exc:
                overflows += 1
                if overflows > OVERFLOW_ATTEMPTS:
                    raise ServerError(f"{client.where}: {exc}") from None
                estimate = hint or sum(estimate_tokens(m["content"]) for m in messages)
                self.window = exc.limit or int((estimate + self.settings.max_tokens) * 0.75)
                self.display.abort_turn(
                    f"the server's context is full; fitting the discussion into {self.window} "
                    "tokens and asking again"
                )
                attempt -= 1
                continue
            self.display.text(reply.finish())
            if not reply.text and empty < EMPTY_RETRIES:
                # Small models sometimes answer as someone else from the first word;
                # another sampling seed usually gives a real turn.
                empty += 1
                attempt -= 1
                seed = (seed + 1) % 2**31
                self.display.abort_turn(
                    "the reply was empty or spoke for someone else; asking again"
                )
                continue
            text, reason = reply.text, reply.reason
            if not text:
                # Last resort: keep what was written, minus the other speaker's tag.
                text, reason = reply.salvage(), "salvaged"
                self.display.text(text)
            tokens = f"{result.prompt_tokens}+{result.completion_tokens} tokens"
            self.display.end_turn(f"{tokens}, {result.latency_s:.1f} s")
            return result, text, reason
        raise ServerError(f"{client.where}: the reply stream broke off {STREAM_ATTEMPTS} times")

    def _take_turn(self, plan: TurnPlan) -> Turn:
        result, text, reason = self._call(plan)
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
            finish_reason=reason or result.finish_reason,
            tokens_source=result.tokens_source,
            model=self.clients[plan.speaker].model,
        )

    # -- the whole run --------------------------------------------------------------
    def run_info(self, models: Mapping[str, str]) -> dict[str, Any]:
        """The first transcript line: everything needed to understand or redo the run."""
        return {
            "version": __version__,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "table": str(self.table.directory.resolve()),
            "model": self.client.model,
            "models": dict(models),
            "base_url": "offline" if self.offline else self.client.where,
            "offline": self.offline,
            "context_window": self.window,
            "settings": self.settings.to_dict(),
            "participants": [p.to_dict() for p in self.table.personas],
            "questions": list(self.table.task.questions),
            "task": {
                "context": self.table.task.context,
                "discuss_instructions": self.table.task.discuss_instructions,
                "summarize_instructions": self.table.task.summarize_instructions,
            },
            "prompts": self.prompts.sources(),
        }

    def _replay(self, records: list[dict[str, Any]]) -> Phase | None:
        """Rebuild the state of a recorded run, turn by turn, without calling any model.

        The moderator makes its decisions again and must arrive at the recorded ones;
        the shared transcript is rebuilt (folds included) exactly as it was.
        """
        previous: Phase | None = None
        for number, rec in enumerate(records):
            plan = self.moderator.plan()
            if plan is None or (plan.index, plan.speaker, plan.phase.value) != (
                rec.get("index"),
                rec.get("speaker"),
                rec.get("phase"),
            ):
                raise InputError(
                    f"{self.out_dir / 'transcript.jsonl'}: turn {number} does not match what "
                    "the moderator decides; was the transcript edited? Start a new run instead"
                )
            self._announce(plan, previous)
            self._fit(self._own_part(plan))
            self.shared.add(plan.speaker, rec["text"], "turn")
            self.moderator.record(rec["text"])
            previous = plan.phase
        return previous

    def _open(self) -> None:
        self._say("opening")
        if self.settings.introductions:
            for p in self.table.personas:
                intro = p.introduction or f"I'm {p.full_name}."
                self.display.introduction(p.name, intro)
                self.shared.add(p.name, intro, "introduction")

    def run(self, resume: dict[str, Any] | None = None) -> RunResult:
        """Run the discussion to its end, writing the transcript as it goes.

        With `resume` (the recorded run line and turns, from `load_run`), carry on an
        interrupted run from its last complete turn.
        """
        models = {name: c.resolve_model() for name, c in self.clients.items()}
        jsonl = self.out_dir / "transcript.jsonl"
        if resume is None:
            if jsonl.exists():
                raise InputError(
                    f"{self.out_dir}: already holds a transcript; choose another --out"
                )
            self.window = self._find_window()
        else:
            # The recorded window, so folds happen where they happened before.
            self.window = resume["run"].get("context_window") or self._find_window()
        names = list(self.personas)
        self.display.set_colors(names, assign_colors([p.color for p in self.table.personas]))
        writer = TranscriptWriter(jsonl)
        status, error = "failed", ""
        totals = [0, 0]
        sources: set[str] = set()
        clock = dt.datetime.now()
        try:
            if resume is None:
                writer.run(self.run_info(models))
                self._open()
                previous: Phase | None = None
            else:
                done = resume["turns"]
                writer.resume(len(done), models)
                shown, self.display = (
                    self.display,
                    Display(io.StringIO(), io.StringIO(), quiet=True),
                )
                try:
                    self._open()
                    previous = self._replay(done)
                finally:
                    self.display = shown
            while (plan := self.moderator.plan()) is not None:
                self._announce(plan, previous)
                turn = self._take_turn(plan)
                writer.turn(turn)
                self.shared.add(turn.speaker, turn.text, "turn")
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
            self.shared.folds,
        )
