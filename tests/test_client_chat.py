from __future__ import annotations

import pytest
from _loopback import serve, sse

from roundtable.client import ChatClient, ContextOverflow, IncompleteStream
from roundtable.errors import ServerError

MSGS = [{"role": "system", "content": "You are Ann."}, {"role": "user", "content": "Bob: Hi Ann."}]


def make(server, **kw) -> ChatClient:
    kw.setdefault("retry_wait", 0.01)
    return ChatClient(server.base_url, "x", kw.pop("model", None), 10, **kw)


def ask(client: ChatClient, **kw):
    return client.complete(MSGS, temperature=0.7, max_tokens=kw.pop("max_tokens", 20), seed=1, **kw)


def test_streams_with_usage_and_resolves_the_model(dummy):
    client = make(dummy())
    seen = []
    result = ask(client, on_text=seen.append)
    assert client.model == "markov-dummy" and result.finish_reason in ("stop", "length")
    assert "".join(seen) == result.text and result.tokens_source == "stream_usage"
    assert result.completion_tokens == len(result.text.split()) and result.first_token_s is not None


def test_caller_can_end_a_stream_early(dummy):
    client = make(dummy(quirks={"ramble"}))
    result = ask(client, max_tokens=50, on_text=lambda delta: False)
    assert result.finish_reason == "client_stop" and len(result.text.split()) == 1


def test_429_and_500_are_retried_until_success(dummy):
    client = make(dummy(fail_rate=0.5, seed=3, retry_after_ms=10), retries=10)
    assert all(ask(client).text for _ in range(10))


def test_retries_are_bounded(dummy):
    client = make(dummy(fail_rate=1.0, seed=1, retry_after_ms=10), retries=2)
    with pytest.raises(ServerError, match="after 3 attempts"):
        ask(client)


@pytest.mark.parametrize(
    "quirk,status", [("no-system-role", 400), ("alternating-roles", 500), ("no-system-role", 422)]
)
def test_template_errors_switch_layout_once_and_are_not_retried_blindly(dummy, quirk, status):
    notices: list[str] = []
    waits: list[float] = []  # a backoff would be recorded here: no wall-clock bound needed
    server = dummy(quirks={quirk}, template_error_status=status)
    client = make(server, retry_wait=5, notice=notices.append, sleep=waits.append)
    assert ask(client).text and ask(client).text
    assert waits == []  # no backoff: the error was understood
    assert (
        client.mode == "no-system" and len(notices) == 1 and "compat mode 'no-system'" in notices[0]
    )


def test_fixed_compat_mode_reports_template_errors(dummy):
    client = make(dummy(quirks={"no-system-role"}), compat_mode="standard")
    with pytest.raises(ServerError, match="chat template rejected.*--compat no-system"):
        ask(client)
    assert ask(make(dummy(quirks={"alternating-roles"}), compat_mode="alternating")).text


def test_context_overflow_is_raised_with_the_limit(dummy):
    client = make(dummy(context_window=300), retry_wait=5)
    with pytest.raises(ContextOverflow) as exc:
        ask(client, max_tokens=290)
    assert exc.value.limit == 300


def test_server_tokenizer_and_context_window(dummy):
    server = dummy(context_window=2048)
    client = make(server)
    assert client.count_tokens("one two three") == 3 and client.server.tokenizer == "/tokenize"
    assert client.context_window() == 2048


def test_no_tokenizer_means_none(dummy):
    client = ChatClient("http://127.0.0.1:9/v1", "x", "m", 1)
    assert client.count_tokens("a b") is None and client.count_tokens("c") is None


def test_dropped_streams_raise_and_repeated_drops_stop_streaming(dummy):
    notices = []
    client = make(dummy(drop_rate=1.0, seed=2), notice=notices.append)
    for _ in range(3):
        with pytest.raises(IncompleteStream):
            ask(client, stream=True)
    assert not client.streaming and len(notices) == 1
    result = ask(client, stream=True)  # now sent without streaming
    assert result.text and result.tokens_source == "usage"


def test_unreachable_server_error_names_the_url(dummy):
    client = ChatClient("http://127.0.0.1:9/v1", "sk-secret-123", "m", retries=1, retry_wait=0.01)
    with pytest.raises(ServerError) as exc:
        ask(client)
    assert str(exc.value).startswith("http://127.0.0.1:9/v1: unreachable after 2 attempts (")
    assert str(exc.value).endswith("; start the server or check the base URL")
    assert "sk-secret" not in str(exc.value) and exc.value.resumable


def test_a_server_that_rejects_stream_options_is_asked_without_them(dummy):
    client = make(dummy(quirks={"no-stream-options"}), retry_wait=5)
    seen = []
    first = ask(client, on_text=seen.append, prompt_tokens_hint=50)
    assert first.text == "".join(seen) and not client.stream_usage
    assert first.tokens_source == "tokenizer" and first.prompt_tokens == 50
    assert first.completion_tokens == len(first.text.split())
    assert ask(client).text  # no second refusal


CHAT = ("POST", "/v1/chat/completions")
MODELS = ("GET", "/v1/models")
LISTING = (200, {"object": "list", "data": [{"id": "m", "object": "model"}]}, {})


def test_each_retry_is_reported_and_counted_and_a_long_wait_is_announced():
    script = [
        (500, {"error": {"message": "boom"}}, {}),
        (429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        (200, sse("Hi", " there."), {}),
    ]
    notices, lines = [], []
    with serve({CHAT: script}) as (root, seen):
        client = ChatClient(root + "/v1", "x", "m", 10, retry_wait=0.01, notice=notices.append,
                            debug=lines.append)  # fmt: skip
        result = ask(client)
    asked = [path for _, path, _ in seen if path.endswith("/completions")]
    assert result.text == "Hi there." and result.requests == 3 and len(asked) == 3
    assert notices == [f"roundtable: {root}/v1 asked to wait 1 s (HTTP 429); waiting"]
    assert len(lines) == 2 and "HTTP 500 (boom); retry 1 of 4 in 0.0" in lines[0]
    assert lines[1].endswith("HTTP 429 (slow down); retry 2 of 4 in 1.00 s")


def test_a_slow_retry_is_said_without_verbose():
    # A server that fails slowly, or a long backoff, must not be minutes of silence.
    script = [(500, {"error": {"message": "boom"}}, {}), (200, sse("Hi."), {})]
    notices, lines = [], []
    with serve({CHAT: script}) as (root, _):
        client = ChatClient(root + "/v1", "x", "m", 10, retry_wait=1.5, notice=notices.append,
                            debug=lines.append)  # fmt: skip
        client.retrier._sleep = lambda s: None  # the wait is what matters, not its time
        assert ask(client).text == "Hi."
    assert len(notices) == 1 and "HTTP 500 (boom); retry 1 of 4 in " in notices[0]
    assert lines == []


def test_layout_changes_are_reasks_not_failures(dummy):
    client = make(dummy(quirks={"alternating-roles"}), retries=0)
    two_users = [*MSGS, {"role": "user", "content": "Carol: And?"}]
    # Two template errors (standard, then no-system), then an answer: no retry needed.
    result = client.complete(two_users, temperature=0.7, max_tokens=20)
    assert result.text and result.requests == 3 and client.mode == "alternating"


def test_without_usage_a_tokenizer_counts_prompt_and_completion_window_or_not(dummy):
    client = make(dummy(quirks={"no-stream-options"}))
    result = ask(client)  # no hint: the client counts the prompt itself
    joined = "\n\n".join(m["content"] for m in MSGS)
    assert result.tokens_source == "tokenizer"
    assert result.prompt_tokens == client.count_tokens(joined) + 2 * 8
    assert result.completion_tokens == len(result.text.split())


def test_a_client_counts_only_with_its_own_servers_tokenizer(dummy):
    counted = make(dummy())  # a server with /tokenize, on another port
    assert counted.count_tokens("a b c") == 3
    with serve({CHAT: (200, sse("Hello", " all."), {})}) as (root, seen):
        client = ChatClient(root + "/v1", "x", "m", 10, retry_wait=0.01)
        result = ask(client, prompt_tokens_hint=40)
    assert client.count_tokens("a b c") is None
    assert (result.tokens_source, result.prompt_tokens) == ("estimate", 40)
    paths = {path for _, path, _ in seen}
    assert paths == {"/v1/chat/completions", "/tokenize", "/extras/tokenize/count",
                     "/extras/tokenize"}  # fmt: skip


def test_probe_lists_models_once_and_resolves_the_model():
    with serve({MODELS: LISTING}) as (root, seen):
        client = ChatClient(root + "/v1", "x", None, 10)
        assert client.probe() == "m" and client.resolve_model() == "m"
        assert client.context_window() is None
    assert [path for _, path, _ in seen].count("/v1/models") == 1
