from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from dummy_server import ServerConfig
from dummy_server.__main__ import main as server_main
from dummy_server.structured import from_schema

MSGS = [
    {"role": "system", "content": "You are Alice, a cautious economist."},
    {"role": "user", "content": "Bob: Cities should ban cars downtown. What do you think, Alice?"},
]


def client(server: Any, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url, api_key=kw.pop("api_key", "x"), max_retries=0, **kw
    )


def post(
    server: Any,
    path: str,
    body: bytes | str,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(
        server.root_url + path,
        data=data if method == "POST" else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def stream_raw(server: Any, body: dict[str, Any]) -> list[str]:
    """The SSE data lines of a streaming request, exactly as sent."""
    req = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=json.dumps({**body, "stream": True}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_non_streaming_schema_via_openai_client(dummy):
    server = dummy()
    r = client(server).chat.completions.create(
        model="markov-dummy", messages=MSGS, max_tokens=50, seed=1
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.created > 0
    assert r.model == "markov-dummy"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    u = r.usage
    assert u.completion_tokens == len(r.choices[0].message.content.split())
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_streaming_schema_via_openai_client(dummy):
    server = dummy()
    chunks = list(
        client(server).chat.completions.create(
            model="m",
            messages=MSGS,
            max_tokens=30,
            seed=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens == len(text.split())
    again = client(server).chat.completions.create(model="m", messages=MSGS, max_tokens=30, seed=2)
    assert again.choices[0].message.content == text


def test_stream_wire_format_ends_with_done_and_no_usage_unless_asked(dummy):
    lines = stream_raw(dummy(), {"messages": MSGS, "max_tokens": 8, "seed": 4})
    assert lines[-1] == "[DONE]"
    payloads = [json.loads(x) for x in lines[:-1]]
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"
    assert payloads[-1]["choices"][0]["delta"] == {}
    assert all("usage" not in p for p in payloads)
    assert len(payloads) == 1 + 8 + 1  # role chunk, one chunk per word, finish chunk


@pytest.mark.parametrize("seed", [0, 7, 123456789])
def test_same_seed_gives_byte_identical_reply(dummy, seed):
    server = dummy()
    body = json.dumps({"messages": MSGS, "max_tokens": 80, "seed": seed, "temperature": 1.3})
    replies = {
        post(server, "/v1/chat/completions", body)[1]["choices"][0]["message"]["content"]
        for _ in range(3)
    }
    assert len(replies) == 1


def test_different_seeds_and_unseeded_calls_vary(dummy):
    server = dummy()
    seeded = {
        post(server, "/v1/chat/completions", json.dumps({"messages": MSGS, "seed": s}))[1][
            "choices"
        ][0]["message"]["content"]
        for s in range(6)
    }
    assert len(seeded) > 1


def test_temperature_zero_is_deterministic_without_seed_and_temperature_matters(dummy):
    server = dummy()
    body = {"messages": MSGS, "max_tokens": 60, "temperature": 0}
    cold = {
        post(server, "/v1/chat/completions", json.dumps(body))[1]["choices"][0]["message"][
            "content"
        ]
        for _ in range(3)
    }
    assert len(cold) == 1
    hot = {
        post(server, "/v1/chat/completions", json.dumps({**body, "temperature": 2, "seed": s}))[1][
            "choices"
        ][0]["message"]["content"]
        for s in range(5)
    }
    assert cold.isdisjoint(hot) or len(hot) > 1


def test_max_tokens_counts_words_and_reports_length(dummy):
    server = dummy(quirks={"ramble"})
    for n in (1, 3, 17):
        r = client(server).chat.completions.create(model="m", messages=MSGS, max_tokens=n, seed=n)
        assert len(r.choices[0].message.content.split()) == n
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == n


def test_stop_sequence_cuts_before_it(dummy):
    server = dummy()
    full = client(server).chat.completions.create(model="m", messages=MSGS, max_tokens=40, seed=9)
    text = full.choices[0].message.content
    word = text.split()[3]
    cut = client(server).chat.completions.create(
        model="m", messages=MSGS, max_tokens=40, seed=9, stop=[word]
    )
    assert cut.choices[0].message.content == text[: text.find(word)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client(server).chat.completions.create(
        model="m", messages=MSGS, max_tokens=40, seed=9, stop=word, stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        == text[: text.find(word)]
    )


def test_reply_learns_from_the_request_text(dummy):
    server = dummy()
    odd = "Zebras negotiate quarterly with the lighthouse committee. " * 30
    texts = [
        client(server)
        .chat.completions.create(model="m", messages=[{"role": "user", "content": odd}], seed=s)
        .choices[0]
        .message.content
        for s in range(8)
    ]
    assert any("lighthouse" in t for t in texts)


def test_empty_prompt_still_produces_sentences(dummy):
    r = client(dummy()).chat.completions.create(
        model="m", messages=[{"role": "user", "content": ""}], seed=1
    )
    assert len(r.choices[0].message.content.split()) >= 3


def test_models_health_and_tokenize_agree_with_usage(dummy):
    server = dummy(context_window=4096)
    status, models, _ = post(server, "/v1/models", "", method="GET")
    assert status == 200 and models["data"][0]["id"] == "markov-dummy"
    assert models["data"][0]["max_model_len"] == 4096
    assert post(server, "/health", "", method="GET")[:2] == (200, {"status": "ok"})
    _, tok, _ = post(server, "/tokenize", json.dumps({"messages": MSGS}))
    r = client(server).chat.completions.create(model="m", messages=MSGS, max_tokens=5)
    assert tok["count"] == r.usage.prompt_tokens == len(tok["tokens"])
    _, tok2, _ = post(server, "/tokenize", json.dumps({"prompt": "one two  three"}))
    assert tok2["count"] == 3 and tok2["max_model_len"] == 4096


BAD = [
    ("malformed-json", "/v1/chat/completions", "{not json", 400, None),
    ("not-an-object", "/v1/chat/completions", "[1, 2]", 400, None),
    ("missing-messages", "/v1/chat/completions", '{"model": "m"}', 400, "messages"),
    ("empty-messages", "/v1/chat/completions", '{"messages": []}', 400, "messages"),
    ("messages-wrong-type", "/v1/chat/completions", '{"messages": "hi"}', 400, "messages"),
    (
        "bad-role",
        "/v1/chat/completions",
        '{"messages": [{"role": "wizard", "content": "x"}]}',
        400,
        "messages[0]",
    ),
    (
        "content-wrong-type",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": 5}]}',
        400,
        "messages[0]",
    ),
    (
        "max-tokens-zero",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
        400,
        "max_tokens",
    ),
    (
        "max-tokens-string",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}',
        400,
        "max_tokens",
    ),
    (
        "temperature-high",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "temperature": 3}',
        400,
        "temperature",
    ),
    (
        "stream-string",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
        400,
        "stream",
    ),
    (
        "stop-too-many",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}',
        400,
        "stop",
    ),
    (
        "seed-float",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "x"}], "seed": 1.5}',
        400,
        "seed",
    ),
    ("tokenize-nothing", "/tokenize", "{}", 400, "prompt"),
]


@pytest.mark.parametrize("name,path,body,status,param", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_openai_style_json_errors(dummy, name, path, body, status, param):
    code, payload, headers = post(dummy(), path, body)
    assert code == status
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert payload["error"]["param"] == param and payload["error"]["message"]


def test_body_over_one_mib_is_413(dummy):
    big = json.dumps({"messages": [{"role": "user", "content": "x" * (1024 * 1024)}]})
    code, payload, _ = post(dummy(), "/v1/chat/completions", big)
    assert code == 413 and "error" in payload


def test_unknown_route_404_and_wrong_method_405(dummy):
    server = dummy()
    code, payload, _ = post(server, "/v1/nothing", "{}")
    assert code == 404 and payload["error"]["type"] == "not_found_error"
    code, payload, headers = post(server, "/v1/chat/completions", "", method="GET")
    assert code == 405 and "POST" in headers["Allow"] and payload["error"]["message"]


def test_openai_client_raises_typed_errors(dummy):
    server = dummy()
    with pytest.raises(openai.BadRequestError) as exc:
        client(server).chat.completions.create(model="m", messages=[])
    assert exc.value.status_code == 400 and exc.value.body["param"] == "messages"


def test_api_key_required_when_configured_and_never_echoed(dummy):
    server = dummy(api_key="s3cret-key")
    with pytest.raises(openai.AuthenticationError) as exc:
        client(server, api_key="wrong-guess").chat.completions.create(model="m", messages=MSGS)
    assert "wrong-guess" not in str(exc.value) and "s3cret" not in str(exc.value)
    ok = client(server, api_key="s3cret-key").chat.completions.create(
        model="m", messages=MSGS, max_tokens=3
    )
    assert ok.choices[0].message.content
    assert post(server, "/health", "", method="GET")[0] == 200
    assert post(server, "/tokenize", '{"prompt": "a"}')[0] == 401


def test_latency_and_tokens_per_second_pace_the_stream(dummy):
    server = dummy(latency_ms=150, tokens_per_second=50, quirks={"ramble"})
    start = time.monotonic()
    stream = client(server).chat.completions.create(
        model="m", messages=MSGS, max_tokens=10, stream=True
    )
    arrivals = [
        time.monotonic() - start for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(arrivals) == 10
    assert arrivals[0] >= 0.15  # the first token waits for the latency
    assert arrivals[-1] - arrivals[0] >= 9 / 50 * 0.9  # then 50 tokens per second


def test_fail_rate_gives_500_and_429_with_retry_after(dummy):
    server = dummy(fail_rate=0.5, seed=3, retry_after_ms=250)
    seen: dict[int, int] = {}
    for _ in range(40):
        code, payload, headers = post(
            server, "/v1/chat/completions", json.dumps({"messages": MSGS, "max_tokens": 2})
        )
        seen[code] = seen.get(code, 0) + 1
        if code == 429:
            assert headers["Retry-After"] == "1" and headers["retry-after-ms"] == "250"
            assert payload["error"]["code"] == "rate_limit_exceeded"
        if code == 500:
            assert payload["error"]["type"] == "server_error"
    assert set(seen) == {200, 429, 500} and 8 <= seen[200] <= 32


def test_fail_rate_is_seeded(dummy):
    def codes(server: Any) -> list[int]:
        return [
            post(server, "/v1/chat/completions", json.dumps({"messages": MSGS, "max_tokens": 1}))[0]
            for _ in range(20)
        ]

    assert codes(dummy(fail_rate=0.4, seed=11)) == codes(dummy(fail_rate=0.4, seed=11))


def test_drop_rate_cuts_streams_without_finish_or_done(dummy):
    server = dummy(drop_rate=1.0, seed=5)
    for _ in range(10):
        lines = stream_raw(server, {"messages": MSGS, "max_tokens": 20, "seed": 1})
        assert "[DONE]" not in lines
        assert all(json.loads(x)["choices"][0]["finish_reason"] is None for x in lines)
    full = stream_raw(dummy(drop_rate=0.0), {"messages": MSGS, "max_tokens": 20, "seed": 1})
    assert full[-1] == "[DONE]"


def test_drop_rate_one_in_three(dummy):
    server = dummy(drop_rate=0.3, seed=8)
    dropped = sum(
        "[DONE]" not in stream_raw(server, {"messages": MSGS, "max_tokens": 5}) for _ in range(60)
    )
    assert 6 <= dropped <= 30


@pytest.mark.parametrize(
    "quirk,messages,ok",
    [
        ("no-system-role", MSGS, False),
        (
            "no-system-role",
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            True,
        ),
        (
            "alternating-roles",
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            False,
        ),
        ("alternating-roles", [{"role": "assistant", "content": "a"}], False),
        ("alternating-roles", MSGS, False),
        (
            "alternating-roles",
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            True,
        ),
    ],
    ids=[
        "nosys-system",
        "nosys-two-users",
        "alt-two-users",
        "alt-assistant-first",
        "alt-system",
        "alt-ok",
    ],
)
def test_template_quirks(dummy, quirk, messages, ok):
    code, payload, _ = post(
        dummy(quirks={quirk}), "/v1/chat/completions", json.dumps({"messages": messages})
    )
    if ok:
        assert code == 200
    else:
        assert code == 400
        assert (
            payload["error"]["message"]
            == "Conversation roles must alternate user/assistant/user/assistant/..."
        )


def test_template_error_status_can_mimic_llama_cpp(dummy):
    code, _, _ = post(
        dummy(quirks={"no-system-role"}, template_error_status=500),
        "/v1/chat/completions",
        json.dumps({"messages": MSGS}),
    )
    assert code == 500


def test_context_window_overflow(dummy):
    server = dummy(context_window=100)
    _, tok, _ = post(server, "/tokenize", json.dumps({"messages": MSGS}))
    room = 100 - tok["count"]
    assert (
        post(server, "/v1/chat/completions", json.dumps({"messages": MSGS, "max_tokens": room}))[0]
        == 200
    )
    code, payload, _ = post(
        server, "/v1/chat/completions", json.dumps({"messages": MSGS, "max_tokens": room + 1})
    )
    assert code == 400 and payload["error"]["code"] == "context_length_exceeded"
    assert payload["error"]["message"].startswith(
        "This model's maximum context length is 100 tokens."
    )
    assert (
        f"({tok['count']} in the messages, {room + 1} in the completion)"
        in payload["error"]["message"]
    )


def test_ramble_without_max_tokens_fills_the_context(dummy):
    server = dummy(context_window=300, quirks={"ramble"})
    r = client(server).chat.completions.create(model="m", messages=MSGS)
    assert r.usage.total_tokens == 300 and r.choices[0].finish_reason == "length"


def test_concurrent_streaming_clients(dummy):
    server = dummy(tokens_per_second=200)

    def one(i: int) -> str:
        stream = client(server).chat.completions.create(
            model="m", messages=MSGS, max_tokens=15, seed=i, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(32) as pool:
        texts = list(pool.map(one, range(32)))
    assert all(texts)
    assert texts[5] == one(5)  # concurrency does not disturb seeded output


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="fail_rate"):
        ServerConfig(fail_rate=1.5)
    with pytest.raises(ValueError, match="unknown quirk"):
        ServerConfig(quirks=frozenset({"nope"}))
    with pytest.raises(ValueError, match="unknown config key"):
        ServerConfig.from_dict({"fial_rate": 0.1})


@pytest.mark.parametrize(
    "argv",
    [["--fail-rate", "2"], ["--quirk", "bogus"], ["--port", "x"]],
    ids=["rate-range", "quirk", "port"],
)
def test_cli_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        server_main(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


def test_cli_port_in_use_is_one_clean_error(dummy, capsys):
    busy = dummy()
    assert server_main(["--port", str(busy.port), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: 127.0.0.1:") and "--port" in err and err.count("\n") == 1


@pytest.mark.parametrize("record", [True, False], ids=["recording", "not-recording"])
def test_recording_keeps_every_chat_body_in_order_only_when_asked(dummy, record):
    server = dummy(record=record, fail_rate=1.0, seed=1)  # failed requests are recorded too
    for n in (1, 2):
        status, _, _ = post(
            server, "/v1/chat/completions", json.dumps({"messages": MSGS, "seed": n})
        )
        assert status in (429, 500)
    post(server, "/tokenize", json.dumps({"prompt": "not a chat"}))
    expected = [{"messages": MSGS, "seed": 1}, {"messages": MSGS, "seed": 2}]
    assert server.received == (expected if record else [])


def test_structured_values_keep_to_string_lengths_enums_and_ranges():
    schema = {
        "type": "object",
        "properties": {
            "stance": {"type": "string", "enum": ["for"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 12},
            "prompt": {"type": "string", "minLength": 60, "maxLength": 90},
            "creativity": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    short = iter(["", "a b", "c"] * 200)  # a model that says little: padded to minLength
    for seed in range(30):
        value = from_schema(schema, random.Random(seed), lambda: next(short))
        assert value["stance"] == "for" and 1 <= len(value["name"]) <= 12
        assert 60 <= len(value["prompt"]) <= 90 and 0 <= value["creativity"] <= 1


def test_connections_are_kept_alive_across_requests_and_streams(dummy):
    # As vLLM and llama.cpp serve: one connection carries many requests, a streamed (chunked)
    # answer and a request whose body the route never reads included.
    server = dummy()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    chat = {"model": "m", "messages": MSGS, "max_tokens": 8, "seed": 1}
    asks = [
        ("POST", "/tokenize", {"prompt": "two words"}),
        ("POST", "/v1/chat/completions", {**chat, "stream": True}),
        ("POST", "/nowhere", {"prompt": "x" * 5000}),  # a 404 that reads no body
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", chat),
    ]
    for method, path, body in asks:
        conn.request(method, path, body=json.dumps(body) if body else None)
        response = conn.getresponse()
        text = response.read().decode()
        assert response.getheader("Connection") != "close" and not response.will_close
        assert response.status == (404 if path == "/nowhere" else 200)
        if body and body.get("stream"):
            assert response.getheader("Transfer-Encoding") == "chunked"
            assert text.endswith("data: [DONE]\n\n")
    assert conn.sock is not None  # never reconnected: the same socket all along
    with urllib.request.urlopen(f"{server.root_url}/stats/paths") as answer:
        asked = json.load(answer)
    assert asked["POST /v1/chat/completions"] == 2 and asked["POST /nowhere"] == 1
    conn.close()


def test_close_asked_for_is_honoured_and_closing_the_server_cuts_idle_connections(dummy):
    server = dummy()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/health", headers={"Connection": "close"})
    response = conn.getresponse()
    assert response.will_close and response.read() == b'{"status":"ok"}\n'
    idle = socket.create_connection((server.host, server.port), timeout=10)
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    server.close()
    assert idle.recv(4096) == b""  # the kept connection ends with the server
    idle.close()
