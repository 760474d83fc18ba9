"""Structured output: the `response_format` that holds a reply to a JSON schema, in the
form each server takes (see ../shared/SERVERS.md, "Structured output")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# llama-cpp-python compiles a schema into a grammar: a long maxLength expands into one rule
# per character and has killed its server (1,200 did); the reply is checked afterwards anyway.
LLAMA_CPP_PYTHON_MAX_LENGTH = 64


def response_format(name: str, schema: Mapping[str, Any], family: str) -> dict[str, Any]:
    """OpenAI's json_schema form (OpenAI, vLLM, llama.cpp's server, Ollama); for
    llama-cpp-python, whose server refuses that type with a 500, its own json_object form."""
    if family == "llama-cpp-python":
        return {"type": "json_object", "schema": _short_lengths(schema)}
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def _short_lengths(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {
            k: _short_lengths(v)
            for k, v in node.items()
            if not (k == "maxLength" and isinstance(v, int) and v > LLAMA_CPP_PYTHON_MAX_LENGTH)
        }
    if isinstance(node, list):
        return [_short_lengths(v) for v in node]
    return node
