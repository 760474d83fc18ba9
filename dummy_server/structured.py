"""Structured output: a JSON value valid for a request's response_format schema."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any


def wanted_schema(fmt: Any) -> dict[str, Any] | None:
    """The JSON schema asked for: OpenAI's json_schema form, or llama-cpp-python's."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        found = fmt["json_schema"].get("schema")
        return found if isinstance(found, dict) else None
    if fmt.get("type") == "json_object":
        return fmt["schema"] if isinstance(fmt.get("schema"), dict) else {"type": "object"}
    return None


def from_schema(schema: dict[str, Any], rng: random.Random, words: Callable[[], str]) -> Any:
    """A value valid for the schema's common keywords, drawn with rng."""
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            k: from_schema(v if isinstance(v, dict) else {}, rng, words) for k, v in props.items()
        }
    if kind == "array":
        item: dict[str, Any] = schema["items"] if isinstance(schema.get("items"), dict) else {}
        return [from_schema(item, rng, words) for _ in range(schema.get("minItems") or 1)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 100)
        if kind == "integer":
            return rng.randint(math.ceil(low), math.floor(high))
        return round(rng.uniform(low, high), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    text = str(words()).strip() or "yes"
    low = schema.get("minLength")
    while isinstance(low, int) and len(text) < low:  # each round adds at least 4 characters
        text += " " + (str(words()).strip() or "yes")
    return text[: schema.get("maxLength", len(text))]
