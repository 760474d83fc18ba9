from __future__ import annotations

import pytest

from roundtable import compat

SYS_USER = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("standard", SYS_USER),
        ("auto", SYS_USER),
        ("no-system", [{"role": "user", "content": "S\n\nU"}]),
        ("alternating", [{"role": "user", "content": "S\n\nU"}]),
    ],
)
def test_adapt_our_layout(mode, expected):
    assert compat.adapt(SYS_USER, mode) == expected


def test_alternating_merges_neighbours_and_starts_and_ends_with_user():
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "assistant", "content": "A1"},
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "U1"},
        {"role": "user", "content": "U2"},
        {"role": "assistant", "content": "A3"},
    ]
    out = compat.alternate(msgs)
    roles = [m["role"] for m in out]
    assert roles[0] == roles[-1] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    assert out[0]["content"] == "S" and out[1]["content"] == "A1\n\nA2"
    assert out[2]["content"] == "U1\n\nU2"
    assert compat.adapt(SYS_USER, "alternating") is not SYS_USER and SYS_USER[0]["role"] == "system"


@pytest.mark.parametrize(
    "status,message,template,context",
    [
        (400, "Conversation roles must alternate user/assistant/user/assistant/...", True, False),
        (422, "Template error: System role not supported", True, False),
        (500, "Jinja Exception: Only user and assistant roles are supported!", True, False),
        (404, "Conversation roles must alternate", False, False),
        (
            400,
            "This model's maximum context length is 4096 tokens. However, you requested 5000",
            False,
            True,
        ),
        (
            400,
            "the request exceeds the available context size (exceed_context_size_error)",
            False,
            True,
        ),
        (500, "internal error", False, False),
    ],
    ids=[
        "vllm-400",
        "tgi-422",
        "llamacpp-500",
        "404",
        "vllm-context",
        "llamacpp-context",
        "plain-500",
    ],
)
def test_error_classification(status, message, template, context):
    assert compat.is_template_error(status, message) is template
    assert compat.is_context_error(status, message) is context


def test_context_limit_and_ladder():
    assert compat.context_limit("This model's maximum context length is 4096 tokens.") == 4096
    assert compat.context_limit("too long") is None
    assert [compat.stricter(m) for m in compat.LADDER] == ["no-system", "alternating", None]
