"""The questionnaire: each persona answers each item, structured where the server can.

With `structured`, the request carries `response_format` with the item's JSON schema
(OpenAI's form, which vLLM and llama.cpp's server accept too). Either way the reply is
parsed strictly; an invalid reply is asked again once, then recorded as missing: an
answer is never invented. Choice options are shown in an order shuffled per persona with
the run's seed, and recorded in their original order.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .._validate import is_int, is_number
from ..client.structured import response_format
from ..errors import RoundtableError
from ..personas import Persona
from ..sanitize import sanitize
from ..table import Table
from .spec import Item

TRANSCRIPT_CHARS = 6000  # the end of the discussion a persona is shown (small contexts)
MAX_TEXT = 1000  # a free-text answer longer than this is cut
ANSWER_TOKENS = 120


class Asker(Protocol):
    """The part of a ChatClient the questionnaire uses."""

    def complete(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Shown:
    """An item as one persona sees it: choice options in a shuffled order."""

    item: Item
    order: tuple[int, ...]  # original indices of the options, in the order shown

    @property
    def options(self) -> list[str]:
        """The options in the order shown."""
        return [self.item.options[i] for i in self.order]


def stable_int(*parts: Any) -> int:
    """A seed derived from parts (same parts, same seed, in every process)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def shown(item: Item, seed: int, persona: str) -> Shown:
    """The item as `persona` sees it in the run with `seed`."""
    order = list(range(len(item.options)))
    random.Random(stable_int(seed, persona, item.id)).shuffle(order)
    return Shown(item, tuple(order))


def schema(view: Shown) -> dict[str, Any]:
    """The JSON schema of an answer: {"answer": ...}."""
    item = view.item
    answer: dict[str, Any]
    if item.kind == "likert":
        answer = {"type": "integer", "minimum": 1, "maximum": item.scale}
    elif item.kind == "choice":
        answer = {"type": "string", "enum": view.options}
    elif item.kind == "number":
        answer = {"type": "number"}
        if item.min is not None:
            answer["minimum"] = item.min
        if item.max is not None:
            answer["maximum"] = item.max
    else:
        answer = {"type": "string", "maxLength": MAX_TEXT}
    return {
        "type": "object",
        "properties": {"answer": answer},
        "required": ["answer"],
        "additionalProperties": False,
    }


def instructions(view: Shown) -> str:
    """The question and exactly what to reply."""
    item = view.item
    if item.kind == "likert":
        ends = ""
        if len(item.labels) == item.scale:
            ends = " (" + ", ".join(f"{i + 1} = {lab}" for i, lab in enumerate(item.labels)) + ")"
        elif item.labels:
            ends = f" (1 = {item.labels[0]}, {item.scale} = {item.labels[1]})"
        how = f"an integer from 1 to {item.scale}{ends}"
        example = '{"answer": 3}'
    elif item.kind == "choice":
        how = "exactly one of: " + ", ".join(json.dumps(o) for o in view.options)
        example = json.dumps({"answer": view.options[0]})
    elif item.kind == "number":
        low = "" if item.min is None else f" >= {item.min:g}"
        high = "" if item.max is None else f" <= {item.max:g}"
        how = f"a number{low}{' and' if low and high else ''}{high}"
        example = '{"answer": 42}'
    else:
        how = "one or two sentences of text"
        example = '{"answer": "..."}'
    return (
        f"{item.question}\nAnswer as yourself, with {how}. Reply with only a JSON object "
        f"and nothing else, like {example}"
    )


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3].strip()
        if text.startswith("json"):
            text = text[4:].strip()
    return text


def parse(view: Shown, text: str) -> tuple[Any, str]:
    """(answer, "") for a valid reply, else (None, why it is not)."""
    try:
        data = json.loads(_strip_fence(text))
    except ValueError:
        return None, "not a JSON object"
    if not isinstance(data, dict) or "answer" not in data:
        return None, 'no "answer" key'
    value, item = data["answer"], view.item
    if item.kind == "likert":
        if is_int(value) and 1 <= value <= item.scale:
            return value, ""
        return None, f"the answer must be an integer from 1 to {item.scale}"
    if item.kind == "choice":
        folded = {o.casefold(): o for o in item.options}
        if isinstance(value, str) and value.strip().casefold() in folded:
            return folded[value.strip().casefold()], ""
        return None, "the answer must be one of the options, written exactly"
    if item.kind == "number":
        low = -float("inf") if item.min is None else item.min
        high = float("inf") if item.max is None else item.max
        if is_number(value) and low <= value <= high:
            return value, ""
        return None, "the answer must be a number in the range"
    if isinstance(value, str) and value.strip():
        return sanitize(value.strip())[:MAX_TEXT], ""
    return None, "the answer must be non-empty text"


def transcript_text(records: Sequence[Mapping[str, Any]]) -> str:
    """The discussion as `Name: text` lines (its end, when long)."""
    lines = []
    for r in records:
        if r.get("type") in ("turn", "entry") and isinstance(r.get("text"), str):
            lines.append(f"{r.get('speaker', '?')}: {r['text']}")
    text = "\n".join(lines)
    return text[-TRANSCRIPT_CHARS:]


def _messages(
    table: Table,
    persona: Persona,
    when: str,
    discussion: str,
    view: Shown,
) -> list[dict[str, Any]]:
    if when == "before":
        situation = f"The roundtable is about to start.\n\n{table.task.context}".strip()
    else:
        situation = f"The roundtable has ended. What was said:\n\n{discussion}"
    system = f"{table.prompts.persona(persona)}\n\n{situation}\n\nA short questionnaire follows."
    return [{"role": "system", "content": system}, {"role": "user", "content": instructions(view)}]


class Questionnaire:
    """Asks a run's personas the items for one moment (before or after)."""

    def __init__(
        self,
        items: Sequence[Item],
        structured: Mapping[int, bool],
        stop: threading.Event | None = None,
    ) -> None:
        """`structured` maps id(client) to whether to send a JSON schema (updated on refusal);
        `stop` set (Ctrl-C in a study) ends the questionnaire before its next request."""
        self.items = list(items)
        self.structured = dict(structured)
        self.stop = stop

    def _check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            # The caller records the run as interrupted; the moment's answers are asked
            # again, whole, on the next invocation (seeded: they come out the same).
            raise KeyboardInterrupt

    def ask(
        self,
        table: Table,
        clients: Mapping[str, Asker],
        when: str,
        seed: int,
        records: Sequence[Mapping[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """Every persona's answers to the items asked `when`, as answers.csv rows."""
        discussion = transcript_text(records)
        rows = []
        for persona in table.personas:
            client = clients[persona.name]
            for item in (i for i in self.items if when in i.when):
                view = shown(item, seed, persona.name)
                messages = _messages(table, persona, when, discussion, view)
                temperature = table.settings.temperature(persona.creativity)
                request_seed = stable_int(seed, persona.name, item.id, when)
                answer, used = self._answer(client, view, messages, temperature, request_seed)
                rows.append(self._row(table, persona, view, when, seed, answer, used))
        return rows

    def _send(
        self,
        client: Asker,
        messages: list[dict[str, Any]],
        temperature: float,
        seed: int,
        view: Shown,
    ) -> tuple[str, bool]:
        self._check()
        structured = self.structured.get(id(client), False)
        sampling: dict[str, Any] = {}
        if structured:
            family = str(getattr(client, "family", "unknown"))  # what serves the endpoint
            sampling["extra_body"] = {
                "response_format": response_format("answer", schema(view), family)
            }
        try:
            reply = client.complete(
                messages,
                temperature=temperature,
                max_tokens=ANSWER_TOKENS,
                seed=seed,
                stream=False,
                sampling=sampling,
            )
        except RoundtableError:
            if not structured:
                raise
            # The server refused the schema: ask this endpoint in plain text from now on.
            self.structured[id(client)] = structured = False
            reply = client.complete(
                messages, temperature=temperature, max_tokens=ANSWER_TOKENS, seed=seed, stream=False
            )
        return str(reply.text), structured

    def _answer(
        self,
        client: Asker,
        view: Shown,
        messages: list[dict[str, Any]],
        temperature: float,
        seed: int,
    ) -> tuple[Any, bool]:
        text, used = self._send(client, messages, temperature, seed, view)
        answer, why = parse(view, text)
        if why:
            again = [
                *messages,
                {"role": "assistant", "content": text},
                {
                    "role": "user",
                    "content": f"That is not a valid answer ({why}). " + instructions(view),
                },
            ]
            text, used = self._send(client, again, temperature, seed + 1, view)
            answer, why = parse(view, text)
        return (None if why else answer), used

    @staticmethod
    def _row(
        table: Table,
        persona: Persona,
        view: Shown,
        when: str,
        seed: int,
        answer: Any,
        structured: bool,
    ) -> dict[str, Any]:
        item = view.item
        index: Any = None
        if answer is not None and item.kind == "choice":
            index = item.options.index(answer)  # the original position, not the shown one
        elif answer is not None and item.kind == "likert":
            index = answer
        return {
            "seed": seed,
            "persona": persona.name,
            "item": item.id,
            "kind": item.kind,
            "when": when,
            "answer": answer,
            "answer_index": index,
            "missing": answer is None,
            "structured": structured,
            "shown_order": list(view.order) if item.kind == "choice" else None,
            "persona_full_name": persona.full_name,
            "persona_creativity": persona.creativity,
            "persona_talkativeness": persona.talkativeness,
            "persona_model": persona.model or table.settings.model,
        }
