"""The `llm` speaker policy's selector: a model names who speaks next.

The answer must be exactly one of the candidates. Where the server takes a JSON schema
(`response_format`), the choice is constrained to them; otherwise a strict prompt and
strict parsing, one re-ask, then None: the moderator falls back to its own rule. The
moderator never calls this: the run loop does and hands the answer over (and records it,
so a resume replays it without asking).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .client import ChatClient, ContextOverflow, IncompleteStream, structured
from .errors import ServerError
from .request import attempt_seed
from .speakers import parse_selection

_SYSTEM = (
    "You are the moderator of a roundtable discussion. You decide who speaks next, "
    "so that the discussion stays lively and everyone is heard."
)


def schema(candidates: Sequence[str], family: str = "unknown") -> dict[str, Any]:
    """The response_format that constrains the answer to one candidate."""
    return structured.response_format(
        "next_speaker",
        {
            "type": "object",
            "properties": {"speaker": {"type": "string", "enum": list(candidates)}},
            "required": ["speaker"],
            "additionalProperties": False,
        },
        family,
    )


def ask(candidates: Sequence[str], recent: Sequence[str], strict: bool) -> str:
    """The selector's question: the latest entries, then the candidates."""
    names = ", ".join(candidates)
    lines = "\n\n".join(recent) or "(The discussion has just begun.)"
    rule = (
        f"Answer with one name only, exactly as written: {names}."
        if strict
        else f"Who should speak next? Choose one of: {names}. Answer with the name only."
    )
    return f"The discussion so far ends with:\n\n{lines}\n\n{rule}"


class Selector:
    """Asks a model (the selector endpoint) for the next speaker."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.uses_schema: bool | None = None  # unknown until the server answers

    def _request(self, candidates: Sequence[str], recent: Sequence[str], seed: int,
                 strict: bool) -> str:  # fmt: skip
        sampling: dict[str, Any] = {}
        if self.uses_schema is not False:
            sampling["response_format"] = schema(candidates, self.client.family)
        messages = [{"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": ask(candidates, recent, strict)}]  # fmt: skip
        try:
            result = self.client.complete(messages, temperature=0.0, max_tokens=24, seed=seed,
                                          stream=False, sampling=sampling)  # fmt: skip
        except ServerError:
            if self.uses_schema is not None or "response_format" not in sampling:
                raise
            # A server that refuses response_format: ask in plain text from now on.
            self.uses_schema = False
            return self._request(candidates, recent, seed, strict)
        if "response_format" in sampling:
            self.uses_schema = True
        return result.text

    def choose(self, candidates: Sequence[str], recent: Sequence[str], *, seed: int,
               turn: int) -> str | None:  # fmt: skip
        """One candidate's name, or None when two answers named none (or several)."""
        for attempt in range(2):
            try:
                answer = self._request(candidates, recent, attempt_seed(seed, turn, 32 + attempt),
                                       strict=attempt > 0)  # fmt: skip
            except (IncompleteStream, ContextOverflow):
                continue
            choice = parse_selection(answer, candidates)
            if choice is not None:
                return choice
        return None
