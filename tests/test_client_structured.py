"""The response_format for structured output, per server family."""

from __future__ import annotations

import pytest

from roundtable.client.structured import response_format

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 40}, "text": {"type": "string",
                   "maxLength": 1000}, "tags": {"type": "array", "items": {"maxLength": 500}}},
}  # fmt: skip


@pytest.mark.parametrize("family", ["unknown", "llama.cpp"])
def test_openai_form_everywhere_but_llama_cpp_python(family):
    fmt = response_format("answer", SCHEMA, family)
    assert fmt == {"type": "json_schema",
                   "json_schema": {"name": "answer", "strict": True, "schema": SCHEMA}}  # fmt: skip


def test_llama_cpp_python_gets_its_own_form_without_long_length_limits():
    fmt = response_format("answer", SCHEMA, "llama-cpp-python")
    assert fmt["type"] == "json_object"
    props = fmt["schema"]["properties"]
    assert props["name"] == {"type": "string", "maxLength": 40}  # short limits stay
    assert props["text"] == {"type": "string"} and props["tags"]["items"] == {}
    assert SCHEMA["properties"]["text"]["maxLength"] == 1000  # the caller's schema is untouched
