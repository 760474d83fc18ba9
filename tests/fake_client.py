"""A ChatClient stand-in for unit tests of the run loop: no HTTP, scripted replies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from roundtable.client import Completion

# reply(call number, request) -> the reply text, or an exception to raise
Script = Callable[[int, dict[str, Any]], "str | BaseException"]


def echo_script(number: int, request: dict[str, Any]) -> str:
    """A different, plain reply for every request."""
    return f"Point number {number} is made with seed {request['seed']}. It matters."


class FakeClient:
    """Answers from a script and records every request it was sent."""

    def __init__(
        self, script: Script = echo_script, *, window: int | None = None, name: str = "fake"
    ) -> None:
        self.script = script
        self.window = window
        self.model: str | None = f"{name}-model"
        self.where = f"http://{name}.invalid/v1"
        self.requests: list[dict[str, Any]] = []
        self.counted: list[str] = []
        self.probed = 0
        self.closed = False
        self.family = "unknown"  # what serves it (ChatClient.family): no llama.cpp keys

    def probe(self) -> str:
        self.probed += 1
        return self.model or ""

    def resolve_model(self) -> str:
        return self.model or ""

    def context_window(self) -> int | None:
        return self.window

    def count_tokens(self, text: str) -> int | None:
        self.counted.append(text)
        return len(text.split())

    def close(self) -> None:
        self.closed = True

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
        stream: bool = True,
        sampling: dict[str, Any] | None = None,
        on_text: Callable[[str], bool | None] | None = None,
        prompt_tokens_hint: int | None = None,
    ) -> Completion:
        request = {"messages": [dict(m) for m in messages], "seed": seed, "stream": stream,
                   "stop": list(stop), "max_tokens": max_tokens}  # fmt: skip
        self.requests.append(request)
        reply = self.script(len(self.requests) - 1, request)
        if isinstance(reply, BaseException):
            raise reply
        finish = "stop"
        if on_text is not None:
            for i, word in enumerate(reply.split(" ")):
                if on_text(("" if i == 0 else " ") + word) is False:
                    finish = "client_stop"
                    break
        prompt = sum(len(str(m["content"]).split()) for m in messages)
        return Completion(reply, finish, prompt, len(reply.split()), "usage", 0.01, 0.0)
