from __future__ import annotations

import pytest

from roundtable.client import compat

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


def test_ladder_goes_one_step_stricter_and_ends():
    assert [compat.stricter(m) for m in compat.LADDER] == ["no-system", "alternating", None]
