"""One turn's attempts: ask, clean the reply, and ask again within explicit budgets.

Each way an attempt can fail has its own budget (`Limits`), spent by counting, never by
undoing a counter: a dropped stream, a full context (fold and ask again), and a reply
that is empty or speaks as someone else (ask again with a new seed, then salvage), and a
reply the guards reject (echo, instruction leak, another identity: ask again with a new
seed and stronger anti-repetition sampling, then cut the offending sentences). The
result is an `Outcome` that says how many requests the turn took and what was guarded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .budget import MODERATOR, Budget
from .client import ChatClient, Completion, ContextOverflow, IncompleteStream
from .errors import ServerError
from .guards import Verdict, cut
from .personas import Persona
from .reply import ReplyFilter
from .request import TurnRequest
from .textstats import name_forms


@dataclass(frozen=True)
class Limits:
    """How many times each kind of failure may be answered by asking again."""

    stream_drops: int = 3  # the last attempt is made without streaming; then give up
    overflows: int = 2  # fold-and-retry after the server says the context is full
    rerolls: int = 3  # new seeds for a reply that is empty or speaks as someone else
    guards: int = 2  # new seeds (and stronger sampling) for a reply the guards reject


@dataclass(frozen=True)
class Outcome:
    """The accepted reply of a turn and how it was reached."""

    completion: Completion
    text: str
    finish_reason: str
    attempts: int  # model requests for this turn, re-asks and client retries included
    guards: tuple[str, ...]  # why the turn was asked again or cut, in order
    seed: int  # the seed of the accepted attempt


class TurnDisplay(Protocol):
    """What the attempts show (a subset of display.Display)."""

    def prompt(self, messages: Sequence[dict[str, str]], params: dict[str, object]) -> None: ...
    def begin_turn(self, name: str, note: str = "") -> None: ...
    def text(self, delta: str) -> None: ...
    def end_turn(self, footer: str = "") -> None: ...
    def abort_turn(self, reason: str) -> None: ...


# Stronger anti-repetition sampling for a re-ask after a guard: OpenAI's penalties, and
# llama.cpp's own repeat_penalty where the server is llama.cpp or llama-cpp-python.
PENALTY = 0.6
REPEAT_PENALTY = 1.3
LLAMA_FAMILIES = ("llama.cpp", "llama-cpp-python")
# What a re-ask notice says for each failed guard.
_GUARD_NOTICE = {
    "echo": "repeated the discussion",
    "leak": "recited its instructions",
    "identity": "spoke as someone else",
}


def anti_repetition(sampling: Mapping[str, Any], family: str) -> dict[str, Any]:
    """The sampling of a re-ask: penalties raised to at least PENALTY (a persona's own higher
    value stays), and repeat_penalty in extra_body for llama.cpp servers."""
    out = dict(sampling)
    for key in ("frequency_penalty", "presence_penalty"):
        out[key] = max(PENALTY, _number(out.get(key), PENALTY))
    if family in LLAMA_FAMILIES:
        extra = dict(out.get("extra_body") or {})
        extra["repeat_penalty"] = max(REPEAT_PENALTY, _number(extra.get("repeat_penalty"), 0))
        out["extra_body"] = extra
    return out


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else default


@dataclass(frozen=True)
class Speaker:
    """Who is asked, and the names their reply must not speak for."""

    name: str
    own_names: tuple[str, ...]  # name and full name: a leading own tag is dropped
    others: tuple[str, ...]  # other participants' names and the moderator's: cut there
    headers: tuple[str, ...]  # other participants' full names at a line start: cut there

    @classmethod
    def among(cls, persona: Persona, personas: Sequence[Persona]) -> Speaker:
        """A persona as the speaker of a table's discussion."""
        others = [p for p in personas if p.name != persona.name]
        own = set(name_forms(persona.name, persona.full_name))
        # "Chen Wei:" is as much another's tag as "Chen:"; a full name up to its comma,
        # alone at a line start, is a header ("Chen Wei, nurse").
        shorts = [p.full_name.split(",")[0].strip() for p in others]
        names = tuple(dict.fromkeys(n for n in (*(p.name for p in others), *shorts, MODERATOR)
                                    if n and n not in own))  # fmt: skip
        headers = tuple(dict.fromkeys(h for h in (*(p.full_name for p in others), *shorts)
                                      if h and h not in own))  # fmt: skip
        # Its own tag may be the full name up to its comma too ("Chen Wei: ...").
        short = persona.full_name.split(",")[0].strip()
        mine = tuple(dict.fromkeys(n for n in (persona.name, short, persona.full_name) if n))
        return cls(persona.name, mine, names, headers)


def take_turn(
    speaker: Speaker,
    client: ChatClient,
    budget: Budget,
    display: TurnDisplay,
    compose: Callable[[int], TurnRequest],
    fit: Callable[[], int | None],
    *,
    stream: bool,
    limits: Limits = Limits(),
    judge: Callable[[str], Verdict] | None = None,
) -> Outcome:
    """Ask until a usable reply comes; `compose(attempt)` builds each request after `fit()`
    (which folds the transcript if needed and returns the prompt-token hint); `judge`
    runs the guards on a usable reply (see guards.judge)."""
    check = judge or (lambda text: Verdict((), (), ()))
    drops = overflows = rerolls = guarded = requests = 0
    guards: list[str] = []
    rejected: list[tuple[int, str, Verdict, Completion, int]] = []  # (offending, ...)
    while True:
        hint = fit()
        request = compose(rerolls + guarded)
        if guarded:
            request = replace(request, sampling=anti_repetition(request.sampling, client.family))
        last_chance = rerolls >= limits.rerolls
        display.prompt(request.messages, request.params(client.model))
        reply = ReplyFilter(speaker.own_names, speaker.others, speaker.headers)
        display.begin_turn(speaker.name, request.note)
        requests += 1
        try:
            result = client.complete(
                request.messages,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stop=request.stop,
                seed=request.seed,
                stream=stream and drops < limits.stream_drops - 1,
                sampling=request.sampling,
                on_text=_shower(display, reply, keep_reading=last_chance),
                prompt_tokens_hint=hint,
            )
        except IncompleteStream:
            drops += 1
            guards.append("stream_dropped")
            if drops >= limits.stream_drops:
                raise ServerError(
                    f"{client.where}: the reply stream broke off {drops} times"
                ) from None
            display.abort_turn("the reply stream broke off; asking again")
            continue
        except ContextOverflow as exc:
            overflows += 1
            guards.append("context_full")
            if overflows > limits.overflows:
                raise ServerError(f"{client.where}: {exc}") from None
            window = budget.overflowed(exc, hint, request.messages)
            display.abort_turn(
                f"the server's context is full; fitting the discussion into {window} "
                "tokens and asking again"
            )
            continue
        requests += result.requests - 1
        display.text(reply.finish())
        if not reply.text and not last_chance:
            # Small models sometimes answer as someone else from the first word;
            # another sampling seed usually gives a real turn.
            rerolls += 1
            guards.append("impersonation" if reply.reason == "impersonation" else "empty")
            display.abort_turn("the reply was empty or spoke for someone else; asking again")
            continue
        text, reason = reply.text, reply.reason
        if not text:
            # Last resort: keep what was written, minus the other speaker's tag.
            text, reason = reply.salvage(), "salvaged"
            if not text:  # nothing but someone else's lines: the speaker passes
                reason = "guarded_empty"
            display.text(text)
        seed = request.seed
        verdict = check(text)
        if not verdict.ok:
            guards.extend(verdict.failed)
            rejected.append((len(verdict.offending), text, verdict, result, seed))
            what = " and ".join(_GUARD_NOTICE[f] for f in verdict.failed)
            if guarded < limits.guards:
                guarded += 1
                display.abort_turn(f"the reply {what}; asking again")
                continue
            # Last resort: the attempt with the fewest offending sentences, without them.
            _, kept, verdict, result, seed = min(rejected, key=lambda r: r[0])
            text = cut(kept, verdict)
            while text and not (verdict := check(text)).ok and verdict.offending:
                # What is left is judged anew: without a leaked sentence, the rest may be
                # mostly echo.
                text = cut(text, verdict)
            reason = "guarded" if text else "guarded_empty"
            guards.append("cut")
            kept_note = "keeping the rest of the best attempt" if text else f"{speaker.name} passes"
            display.abort_turn(f"the reply {what}; {kept_note}")
            display.begin_turn(speaker.name, request.note)
            display.text(text)
        elif reason:
            guards.append(reason)
        display.end_turn(f"{result.prompt_tokens}+{result.completion_tokens} tokens, "
                         f"{result.latency_s:.1f} s")  # fmt: skip
        return Outcome(result, text, reason or result.finish_reason, requests, tuple(guards),
                       seed)  # fmt: skip


def _shower(
    display: TurnDisplay, reply: ReplyFilter, *, keep_reading: bool
) -> Callable[[str], bool]:
    """Stream deltas through the reply filter to the display; False once it is cut (unless
    the whole reply is wanted: the last chance is salvaged from everything written)."""

    def show(delta: str) -> bool:
        display.text(reply.feed(delta))
        return keep_reading or not reply.done

    return show
