from __future__ import annotations

import pytest

from roundtable.client.classify import (
    CHANGE_LAYOUT,
    CONTEXT_FULL,
    DROP_STREAM_OPTIONS,
    GIVE_UP,
    RETRY,
    WAIT,
    Endpoint,
    classify,
    classify_failure,
    context_limit,
)
from roundtable.client.wire import message_of

V1 = Endpoint("http://gpu:8000/v1", "MYKEY")
ROOT = Endpoint("http://gpu:8000", "MYKEY")
VLLM_CTX = "This model's maximum context length is 4096 tokens. However, you requested 5000"
LCP_CTX = "Requested tokens (3000) exceed context window of 2048"
ALTERNATE = "Conversation roles must alternate user/assistant/user/assistant/..."


def row(status, body, headers, endpoint, kind, seconds=None, limit=None, resumable=True):
    """One case: what the server sent, and the action expected."""
    return status, body, headers, endpoint, kind, seconds, limit, resumable


CASES = {
    "vllm-nested-template": row(
        400, {"error": {"message": ALTERNATE}}, {}, V1, CHANGE_LAYOUT, resumable=False
    ),
    "vllm-flat-template": row(
        400, {"object": "error", "message": ALTERNATE}, {}, V1, CHANGE_LAYOUT, resumable=False
    ),
    "llamacpp-500-jinja": row(
        500, {"error": {"code": 500, "message": "Jinja Exception: System role not supported"}},
        {}, V1, CHANGE_LAYOUT, resumable=False,
    ),
    "tgi-422-template": row(
        422, {"error": "Template error: roles must alternate", "error_type": "template_error"},
        {}, V1, CHANGE_LAYOUT, resumable=False,
    ),
    "strict-stream-options": row(
        422, {"detail": "stream_options: Extra inputs are not permitted"}, {}, V1,
        DROP_STREAM_OPTIONS, resumable=False,
    ),
    "vllm-context": row(400, {"error": {"message": VLLM_CTX}}, {}, V1, CONTEXT_FULL, None, 4096),
    "vllm-flat-context": row(400, {"object": "error", "message": VLLM_CTX}, {}, V1, CONTEXT_FULL,
                          None, 4096),
    "llamacpp-context-n_ctx": row(
        400, {"error": {"message": "the request exceeds the available context size",
                        "type": "exceed_context_size_error", "n_ctx": 2048}},
        {}, V1, CONTEXT_FULL, None, 2048,
    ),
    "llama-cpp-python-context": row(400, {"error": {"message": LCP_CTX}}, {}, V1, CONTEXT_FULL,
                                 None, 2048),
    "context-without-limit": row(413, "context length exceeded", {}, V1, CONTEXT_FULL, None, None),
    "429-retry-after": row(429, {"error": {"message": "x"}}, {"Retry-After": "3"}, V1, WAIT, 3.0),
    "429-retry-after-ms-wins": row(
        429, {}, {"retry-after-ms": "250", "Retry-After": "1"}, V1, WAIT, 0.25,
    ),
    "429-retry-after-capped": row(429, {}, {"retry-after": "9999"}, V1, WAIT, 60.0),
    "429-http-date": row(429, {}, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, V1, RETRY),
    "429-plain": row(429, {}, {}, V1, RETRY),
    "503-retry-after": row(503, "overloaded", {"Retry-After": "2"}, V1, WAIT, 2.0),
    "500-plain": row(500, {"error": {"message": "internal error"}}, {}, V1, RETRY),
    "408": row(408, {}, {}, V1, RETRY),
    "401": row(401, {"error": {"message": "bad key"}}, {}, V1, GIVE_UP, None, None, False),
    "403": row(403, {"error": {"message": "no"}}, {}, V1, GIVE_UP, None, None, False),
    "404-with-v1": row(404, {"error": {"message": "model x does not exist"}}, {}, V1, GIVE_UP,
                    None, None, False),
    "404-without-v1": row(404, {"detail": "Not Found"}, {}, ROOT, GIVE_UP, None, None, False),
    "400-other": row(400, {"error": {"message": "top_p must be <= 1"}}, {}, V1, GIVE_UP, None,
                  None, False),
    "404-template-words-are-not-template": row(404, ALTERNATE, {}, V1, GIVE_UP, None, None, False),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_classify_table(case):
    status, body, headers, endpoint, kind, seconds, limit, resumable = case
    action = classify(status, message_of(body) or "", headers, endpoint)
    assert (action.kind, action.seconds, action.limit) == (kind, seconds, limit)
    assert action.resumable is resumable and action.status == status


@pytest.mark.parametrize(
    "status,endpoint,expected",
    [
        (401, V1, "http://gpu:8000/v1: the server rejected the API key (401); set MYKEY to a "
                  "key this server accepts"),
        (404, ROOT, "http://gpu:8000: not found (HTTP 404) (Not Found); OpenAI-compatible "
                    "servers answer under /v1: try http://gpu:8000/v1"),
        (404, V1, "http://gpu:8000/v1: not found (HTTP 404) (Not Found); check the model name "
                  "and the base URL"),
    ],
    ids=["401-names-key-env", "404-suggests-v1", "404-with-v1"],
)  # fmt: skip
def test_give_up_messages_say_the_fix(status, endpoint, expected):
    assert classify(status, "Not Found", {}, endpoint).text(endpoint.where) == expected


@pytest.mark.parametrize(
    "kind,expected_kind,words,resumable",
    [
        ("tls", GIVE_UP, "TLS (https) handshake failed (bad record); the server may speak "
                         "plain HTTP: try http://gpu:8000/v1", False),
        ("connect", RETRY, "unreachable after 3 attempts (bad record); start the server or "
                           "check the base URL", True),
        ("timeout", RETRY, "no answer within the timeout after 3 attempts; raise --timeout",
         True),
        ("garbled", RETRY, "not a chat completion after 3 attempts (bad record)", True),
    ],
    ids=["tls", "connect", "timeout", "garbled"],
)  # fmt: skip
def test_failures_without_an_answer(kind, expected_kind, words, resumable):
    https = Endpoint("https://gpu:8000/v1", "K")
    action = classify_failure(kind, "bad record", https)
    assert action.kind == expected_kind and action.resumable is resumable
    assert words in action.text(https.where, 1 if kind == "tls" else 3)


def test_context_limit():
    assert context_limit(VLLM_CTX) == 4096 and context_limit("too long") is None
