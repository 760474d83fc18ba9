"""What a server offers, found where each kind of server tells it (loopback stand-ins)."""

from __future__ import annotations

import threading
import tracemalloc
from typing import Any

import pytest
from _loopback import serve, sse

from roundtable.client import ChatClient, ServerFacts
from roundtable.client import server as server_module
from roundtable.client.classify import Endpoint
from roundtable.client.retry import Retrier
from roundtable.client.server import ServerInfo
from roundtable.client.transport import StatusError
from roundtable.errors import ServerError

LISTING = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "me"}]}
MODELS = {("GET", "/v1/models"): (200, LISTING, {})}
PROPS = ("GET", "/props")
SHOW = ("POST", "/api/show")


@pytest.mark.parametrize(
    "routes,window",
    [
        ({PROPS: (200, {"default_generation_settings": {"n_ctx": 4096}, "n_ctx": 16384}, {})},
         4096),
        ({PROPS: (200, {"n_ctx": 8192, "total_slots": 1}, {})}, 8192),
        ({SHOW: (200, {"parameters": "stop \"<|eot|>\"\nnum_ctx 6000",
                       "model_info": {"general.architecture": "llama",
                                      "llama.context_length": 131072}}, {})}, 6000),
        ({SHOW: (200, {"model_info": {"general.architecture": "qwen2",
                                      "qwen2.context_length": 32768}}, {})}, 4096),
        ({SHOW: (200, {"model_info": {"general.architecture": "gemma",
                                      "gemma.context_length": 2048}}, {})}, 2048),
        ({("POST", "/extras/tokenize"): (200, {"tokens": [1, 2]}, {})}, None),
    ],
    ids=["llamacpp-slot", "llamacpp-top-level", "ollama-num_ctx", "ollama-default",
         "ollama-short-model", "llama-cpp-python-tells-nothing"],
)  # fmt: skip
def test_context_window_where_each_server_tells_it(routes, window):
    with serve({**MODELS, **routes}) as (root, seen):
        client = ChatClient(root + "/v1", "x", "m", 10)
        assert client.context_window() == window and client.context_window() == window
    # Each fact asked once; Ollama's /api/show only after /props said nothing.
    paths = [path for _, path, _ in seen]
    assert paths.count("/props") == 1 and paths.count("/api/show") <= 1
    if "/api/show" in paths:
        assert paths.index("/props") < paths.index("/api/show")


def test_the_listing_tells_the_window_and_the_model(dummy):
    client = ChatClient(dummy(context_window=1500).base_url, "x", None, 10)
    assert client.context_window() == 1500 and client.model == "markov-dummy"


def test_llama_cpp_python_streaming_counts_with_its_tokenizer():
    # No usage when streaming and no window anywhere: counts still come from the server.
    routes = {
        **MODELS,
        ("POST", "/extras/tokenize/count"): (200, {"count": 3}, {}),
        ("POST", "/extras/tokenize"): (200, {"tokens": [1, 2, 3]}, {}),
        ("POST", "/v1/chat/completions"): (200, sse("One", " two."), {}),
    }
    with serve(routes) as (root, seen):
        client = ChatClient(root + "/v1", "x", "m", 10)
        result = client.complete(
            [{"role": "user", "content": "Hi"}], temperature=0.5, max_tokens=10
        )
        assert client.context_window() is None
    assert (result.tokens_source, result.prompt_tokens, result.completion_tokens) == (
        "tokenizer",
        3 + 8,
        3,
    )
    assert [p for _, p, _ in seen].count("/tokenize") == 1  # tried once, then never again


class HeldProbes:
    """A transport whose listing and /props wait until released; it has no tokenizer."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def _held(self, answer: Any) -> Any:
        self.entered.set()
        self.release.wait(30)
        return answer

    def list_models(self) -> list[dict[str, Any]]:
        return self._held([{"id": "m", "max_model_len": 2048}])

    def get_root(self, path: str) -> Any:
        return self._held({"n_ctx": 4096})

    def post_root(self, path: str, body: dict[str, Any]) -> Any:
        raise StatusError(404, "Not Found", {})


@pytest.mark.parametrize("searched_before", [True, False], ids=["route-known", "route-unknown"])
@pytest.mark.parametrize("held", ["context_window", "props"])
def test_counting_does_not_wait_for_another_facts_probe(held, searched_before):
    # A study's workers count every turn; a slow listing or /props probe on another thread
    # must not stall them (they would not see the stop flag either).
    facts, transport = ServerFacts(keep_counts=True), HeldProbes()
    prober, counter = (
        ServerInfo(transport, Retrier(Endpoint("here", "KEY"), 0, 0.0), "m", facts)
        for _ in range(2)
    )
    if searched_before:
        assert counter.count_tokens("first") is None
    holder = threading.Thread(target=getattr(prober, held), daemon=True)
    counts: list[int | None] = []
    worker = threading.Thread(target=lambda: counts.append(counter.count_tokens("hi")), daemon=True)
    try:
        holder.start()
        assert transport.entered.wait(10)
        worker.start()
        worker.join(10)
        assert counts == [None] and holder.is_alive()
    finally:
        transport.release.set()
    holder.join(10)


def test_a_failed_listing_is_asked_for_once_per_study():
    # Clients sharing facts (a study's workers): the first meets the error after its
    # retries; later ones get the same error, and no window, without asking again.
    routes = {("GET", "/v1/models"): (500, {"error": {"message": "boom"}}, {})}
    facts = ServerFacts(keep_counts=True)
    with serve(routes) as (root, seen):
        errors = []
        for _ in range(3):
            client = ChatClient(root + "/v1", "x", None, 5, retries=2, sleep=lambda s: None,
                                facts=facts)  # fmt: skip
            with pytest.raises(ServerError) as exc:
                client.probe()
            errors.append(str(exc.value))
            assert client.context_window() is None
            client.close()
    assert errors[0] == errors[1] == errors[2] and "boom" in errors[0]
    assert [p for _, p, _ in seen].count("/v1/models") == 3  # one try and two retries, once


def test_kept_counts_hold_no_texts(monkeypatch):
    # Long texts counted by a study stay bounded in memory: the oldest count goes when the
    # cache is full, and what is kept per text is small whatever the text's length.
    monkeypatch.setattr(server_module, "MAX_COUNTS", 50)
    facts = ServerFacts(keep_counts=True)

    def text(number: int) -> str:  # made anew each time: only the cache can keep it
        return f"{number:05d}" * (server_module.MAX_COUNTED_CHARS // 5)

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(60):
            facts.remember("m", text(number), number)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 50 * server_module.MAX_COUNTED_CHARS // 20  # texts kept would be 1 MB

    def ask(text: str) -> int:
        raise AssertionError("asked again")

    assert facts.counted("m", text(59), ask) == 59
    assert facts.counted("m", text(0), lambda text: -1) == -1  # the oldest went
