"""What a server offers, found where each kind of server tells it (loopback stand-ins)."""

from __future__ import annotations

import pytest
from _loopback import serve, sse

from roundtable.client import ChatClient

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
