from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from roundtable.errors import ServerError
from roundtable.llm import ChatClient, ContextOverflow, IncompleteStream

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


def headers(**h):
    return SimpleNamespace(
        response=SimpleNamespace(headers={k.replace("_", "-"): v for k, v in h.items()})
    )


def test_retry_after_is_honoured_and_capped():
    client = ChatClient("http://127.0.0.1:9/v1", "x", "m", retry_wait=0.5)
    assert client._wait(1, headers(retry_after_ms="250")) == 0.25
    assert client._wait(1, headers(retry_after="3")) == 3.0
    assert client._wait(1, headers(retry_after="9999")) == 60.0
    assert 0.75 <= client._wait(2, headers(retry_after="Wed, 21 Oct")) <= 1.25  # backoff 0.5 x 2


@pytest.mark.parametrize(
    "quirk,status", [("no-system-role", 400), ("alternating-roles", 500), ("no-system-role", 422)]
)
def test_template_errors_switch_layout_once_and_are_not_retried_blindly(dummy, quirk, status):
    notices = []
    client = make(
        dummy(quirks={quirk}, template_error_status=status), retry_wait=5, notice=notices.append
    )
    start = time.monotonic()
    assert ask(client).text and ask(client).text
    assert time.monotonic() - start < 2.5  # no 5 s backoff: the error was understood
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
    assert client.count_tokens("one two three") == 3 and client.state.tokenizer == "/tokenize"
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
    assert not client.state.streaming and len(notices) == 1
    result = ask(client, stream=True)  # now sent without streaming
    assert result.text and result.tokens_source == "usage"


def test_unreachable_server_error_names_the_url(dummy):
    client = ChatClient("http://127.0.0.1:9/v1", "sk-secret-123", "m", retries=1, retry_wait=0.01)
    with pytest.raises(ServerError) as exc:
        ask(client)
    assert "http://127.0.0.1:9/v1: unreachable after 2 attempts" in str(exc.value)
    assert "sk-secret" not in str(exc.value)


def test_a_server_that_rejects_stream_options_is_asked_without_them(dummy):
    client = make(dummy(quirks={"no-stream-options"}), retry_wait=5)
    seen = []
    first = ask(client, on_text=seen.append, prompt_tokens_hint=50)
    assert first.text == "".join(seen) and not client.state.stream_usage
    assert first.tokens_source == "tokenizer" and first.prompt_tokens == 50
    assert first.completion_tokens == len(first.text.split())
    assert ask(client).text  # no second refusal
