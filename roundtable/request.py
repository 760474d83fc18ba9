"""A turn's request, built purely: plan + shared transcript + prompts + settings -> what is sent.

No I/O and no state: the same inputs give the same messages, parameters and seed, which
is what lets a resumed run send exactly the requests an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .budget import SharedTranscript
from .config import Settings
from .moderator import Phase, TurnPlan
from .personas import Persona
from .prompts import Prompts

MAX_STOP_SEQUENCES = 4  # OpenAI accepts at most four
MODERATOR = "Moderator"
SEED_SLOTS = 64  # distinct seeds per turn: more than any turn's attempts
_SEED_SPACE = 2**31


def attempt_seed(run_seed: int, turn: int, attempt: int) -> int:
    """The sampling seed of one attempt of one turn; distinct for every (turn, attempt)."""
    if not 0 <= attempt < SEED_SLOTS:
        raise ValueError(f"attempt {attempt} out of range 0..{SEED_SLOTS - 1}")
    # turn * SEED_SLOTS + attempt is unique per pair, so (for turns below 2**25) no two
    # attempts of a run share a seed: a re-ask never repeats the next turn's seed.
    return (run_seed * 1_000_003 + turn * SEED_SLOTS + attempt) % _SEED_SPACE


def own_part(prompts: Prompts, persona: Persona, plan: TurnPlan, layout: str = "shared") -> str:
    """The speaker's part of the request: turn instructions, or the summary's."""
    if plan.phase is Phase.SUMMARY:
        return prompts.summary(persona)
    return prompts.turn(persona, plan, layout)


def messages(system: str, shared: str, own: str) -> list[dict[str, str]]:
    """The shared layout: shared text first (a cacheable prefix), the speaker's part last."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{shared}\n\n{own}"},
    ]


def chat_messages(
    system: str, transcript: SharedTranscript, speaker: str, cue: str
) -> list[dict[str, str]]:
    """The chat layout, as chat-tuned models were trained: who the speaker is in the system
    message, its own earlier words as assistant messages, everyone else's merged into user
    messages with name prefixes, and the moderator's cue last."""
    out = [{"role": "system", "content": system}]
    waiting = [transcript.recap] if transcript.recap else []
    for entry in transcript.entries:
        if entry.speaker == speaker and entry.kind in ("turn", "introduction"):
            if waiting:
                out.append({"role": "user", "content": "\n\n".join(waiting)})
                waiting = []
            out.append({"role": "assistant", "content": entry.text})
        else:
            waiting.append(entry.rendered)
    out.append({"role": "user", "content": "\n\n".join([*waiting, cue])})
    return out


def chat_message_count(transcript: SharedTranscript, speaker: str) -> int:
    """At most how many messages the chat layout sends (for the token budget)."""
    own = sum(e.speaker == speaker and e.kind in ("turn", "introduction")
              for e in transcript.entries)  # fmt: skip
    return 2 * own + 2


def stop_sequences(speaker: str, names: Sequence[str], counts: Mapping[str, int]) -> list[str]:
    """Name tags of the others, the busiest first (the likeliest to be imitated)."""
    others = sorted((n for n in names if n != speaker), key=lambda n: -counts.get(n, 0))
    # sorted() is stable: equal counts keep file order. Past four, the reply filter
    # catches the rest.
    return [f"\n{n}:" for n in [*others, MODERATOR]][:MAX_STOP_SEQUENCES]


@dataclass(frozen=True)
class TurnRequest:
    """Everything sent for one attempt of a turn (the model name aside)."""

    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int
    stop: list[str]
    seed: int
    sampling: dict[str, Any]
    note: str  # shown after the speaker's name: closing, summary or nothing

    def params(self, model: str | None) -> dict[str, Any]:
        """The parameters as shown with -v (never the key)."""
        return {"model": model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                "stop": self.stop, "seed": self.seed, **self.sampling}  # fmt: skip


def build_request(
    *,
    plan: TurnPlan,
    persona: Persona,
    settings: Settings,
    system: str,
    transcript: SharedTranscript,
    own: str,
    names: Sequence[str],
    counts: Mapping[str, int],
    attempt: int,
) -> TurnRequest:
    """The request for attempt number `attempt` (0-based re-asks) of a planned turn.

    `system` is the layout's system message: the shared one, or (chat layout) the shared
    one followed by who the speaker is."""
    base = persona.seed if persona.seed is not None else (settings.seed or 0)
    if settings.layout == "chat":
        sent = chat_messages(system, transcript, plan.speaker, own)
    else:
        sent = messages(system, transcript.text, own)
    return TurnRequest(
        messages=sent,
        temperature=settings.temperature(persona.creativity),
        max_tokens=settings.max_tokens,
        stop=stop_sequences(plan.speaker, names, counts),
        seed=attempt_seed(base, plan.index, attempt),
        sampling={**settings.sampling(), **persona.sampling()},
        note={Phase.WRAP_UP: "closing", Phase.SUMMARY: "summary"}.get(plan.phase, ""),
    )
