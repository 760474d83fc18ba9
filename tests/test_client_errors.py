"""Each failure a new user meets ends in one line that says the fix (real loopback servers)."""

from __future__ import annotations

import re
import socket

import pytest
from _loopback import serve

from roundtable.client import ChatClient
from roundtable.errors import ServerError

MSGS = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]


def probe_error(url: str, **kw) -> ServerError:
    kw.setdefault("retry_wait", 0.01)
    client = ChatClient(url, "sk-secret-123", kw.pop("model", None), 5, **kw)
    with pytest.raises(ServerError) as exc:
        client.probe()
    client.close()
    assert "sk-secret" not in str(exc.value)
    return exc.value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_base_url_without_v1_is_told_to_add_it(dummy):
    root = dummy().base_url.removesuffix("/v1")
    error = probe_error(root)
    assert str(error).endswith(f"OpenAI-compatible servers answer under /v1: try {root}/v1")
    assert not error.resumable


def test_https_to_a_plain_http_port_says_tls_failed_and_tries_http():
    waits: list[float] = []
    with serve({}) as (root, seen):
        error = probe_error(root.replace("http://", "https://") + "/v1", sleep=waits.append)
    assert "TLS (https) handshake failed" in str(error)
    assert str(error).endswith(f"the server may speak plain HTTP: try {root}/v1")
    assert not error.resumable and waits == []  # not retried


def test_a_401_names_the_variable_actually_configured(dummy):
    server = dummy(api_key="the-right-key")
    error = probe_error(server.base_url, key_env="MYKEY")
    assert "rejected the API key (401); set MYKEY to a key" in str(error)
    assert "OPENAI_API_KEY" not in str(error) and not error.resumable


def test_a_down_endpoint_is_found_by_probe():
    url = f"http://127.0.0.1:{free_port()}/v1"
    error = probe_error(url, model="m", retries=1)
    assert str(error).startswith(f"{url}: unreachable after 2 attempts")
    assert str(error).endswith("start the server or check the base URL") and error.resumable


@pytest.mark.parametrize(
    "config,kw,words",
    [
        ({"quirks": {"no-system-role"}}, {"compat_mode": "standard"}, "--compat no-system"),
        ({}, {"sampling": {"top_p": 5}}, "the server refused the request (HTTP 400)"),
    ],
    ids=["template-in-fixed-mode", "bad-sampling"],
)
def test_configuration_errors_are_not_resumable_and_not_retried(dummy, config, kw, words):
    waits: list[float] = []
    client = ChatClient(dummy(**config).base_url, "x", None, 5, retry_wait=5, sleep=waits.append,
                        compat_mode=kw.pop("compat_mode", "auto"))  # fmt: skip
    with pytest.raises(ServerError, match=re.escape(words)) as exc:
        client.complete(MSGS, temperature=0.5, max_tokens=10, **kw)
    assert not exc.value.resumable and waits == []  # not retried


def test_an_answer_that_is_not_json_is_one_clean_error():
    with serve({("POST", "/v1/chat/completions"): (200, "<html>login</html>", {})}) as (root, _):
        client = ChatClient(root + "/v1", "x", "m", 5, retries=1, retry_wait=0.01)
        with pytest.raises(ServerError, match="not a chat completion after 2 attempts"):
            client.complete(MSGS, temperature=0.5, max_tokens=10, stream=False)
