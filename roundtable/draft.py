"""`roundtable personas draft`: a model drafts persona files from a brief, with controlled
variation across named attributes.

Each draft is asked for as structured output (a JSON schema in `response_format`) where the
server takes one, else by a strict prompt; the reply is checked by the same loader as a
hand-written file (`Persona.from_dict`) and by name against the table's personas. A draft
that fails is asked once more (a new seed, told what was wrong), then reported and skipped.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import textstats as ts
from .client import ChatClient, ContextOverflow, IncompleteStream, structured
from .errors import InputError, RoundtableError, ServerError
from .personas import Persona
from .personas import file_stem as slug  # noqa: F401  (draft_command's name for it)
from .request import attempt_seed
from .sanitize import sanitize

FIELDS = ("name", "full_name", "prompt", "creativity", "introduction")
MAX_NAME = 40
CREATIVITY = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # the values a draft may choose
PROMPT_MIN = 40  # characters: a prompt shorter than this says nothing about anyone
_PLACEHOLDER = re.compile(r"\.\.\.|…|\[[^\]]*\]|<[^>]*>")  # "...", "[Your Name]", "<name>"
TEMPERATURE = 0.9  # drafts should differ from each other
MAX_TOKENS = 700
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")

_SYSTEM = (
    "You write persona files for roundtable, a program that simulates a panel discussion "
    "between participants played by a language model. You reply with one JSON object and "
    "nothing else."
)


@dataclass(frozen=True)
class Vary:
    """One attribute to vary across the drafts, and its values."""

    key: str
    values: tuple[str, ...]


def parse_vary(text: str) -> Vary:
    """`KEY=V1,V2,...` from --vary."""
    key, eq, rest = text.partition("=")
    key = key.strip()
    if not eq or not _KEY.match(key):
        raise InputError(
            f"--vary {text}: expected KEY=VALUE1,VALUE2,... with KEY a word (letters, digits, "
            "_), e.g. --vary stance=for,against,undecided"
        )
    if key in Persona.__dataclass_fields__:
        raise InputError(f"--vary {key}: is a persona field; name the attribute otherwise")
    values = tuple(v.strip() for v in rest.split(","))
    if not all(values) or any(sanitize(v) != v for v in values):
        raise InputError(f"--vary {key}: values must be non-empty text, separated by commas")
    if len(set(values)) < len(values):
        raise InputError(f"--vary {key}: a value is given twice")
    return Vary(key, values)


def check_varies(varies: Sequence[Vary]) -> None:
    """Refuse an attribute named twice."""
    keys = [v.key for v in varies]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise InputError(f"--vary {key}: given twice; give all its values in one --vary")


def assignments(varies: Sequence[Vary], count: int, seed: int) -> list[dict[str, str]]:
    """Attribute values for each draft: every value of a key equally often (any first k
    drafts differ by at most one per value), and each run of as many drafts as there are
    combinations is their whole cross product. Which value comes first is seeded."""
    rng = random.Random(seed)
    shuffled = [rng.sample(v.values, len(v.values)) for v in varies]
    total = math.prod(len(v) for v in shuffled)
    out = []
    for i in range(count):
        i %= total
        combo, period = {}, 1
        for vary, values in zip(varies, shuffled, strict=True):
            n = len(values)
            # Each key cycles through its values; every lcm(period, n) drafts it shifts by
            # one, so that its pairs with the keys before it cover the whole product.
            x = i % (period * n)
            combo[vary.key] = values[(x + x // math.lcm(period, n)) % n]
            period *= n
        out.append(combo)
    return out


def shortfall(varies: Sequence[Vary], plan: Sequence[Mapping[str, str]]) -> str | None:
    """What an uneven --count leaves short: the values (or combinations) that get one draft
    fewer than the others, or none; None when every one gets an equal share."""
    total = math.prod(len(v.values) for v in varies)
    count = len(plan)
    if count % total == 0:
        return None
    drawn = Counter(tuple(attrs.items()) for attrs in plan)
    combos = [tuple(zip((v.key for v in varies), values, strict=True))
              for values in itertools.product(*(v.values for v in varies))]  # fmt: skip
    short = [c for c in combos if drawn[c] == count // total]
    what = "values" if len(varies) == 1 else "combinations"
    shown = [describe_attrs(dict(c)) for c in short[:5]]
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    gets = "gets" if len(short) == 1 else "get"
    gets += " none" if count < total else " one draft fewer than the others"
    return (
        f"--count {count} is not a multiple of the {total} {what} of --vary "
        f"({', '.join(v.key for v in varies)}): {len(short)} of them {gets}: "
        f"{'; '.join(shown)}{more}; for an equal share pass a multiple of {total}"
    )


def describe_attrs(attrs: Mapping[str, str]) -> str:
    """`stance=for, age=30s` (or '' for none)."""
    return ", ".join(f"{k}={v}" for k, v in attrs.items())


def schema(attrs: Mapping[str, str]) -> dict[str, Any]:
    """The JSON schema of one draft: its attributes (fixed) first, then the fields."""
    # Lengths only where short: llama.cpp compiles each bound into its grammar, and a
    # long one (maxLength 1200) makes a grammar it refuses (or its server crashes on).
    text = {"type": "string", "minLength": 1}
    props: dict[str, Any] = {k: {"type": "string", "enum": [v]} for k, v in attrs.items()}
    props.update(
        name={**text, "maxLength": MAX_NAME},
        full_name=text,
        prompt={"type": "string", "minLength": PROMPT_MIN},
        # An enum, not minimum/maximum: llama-cpp-python's grammar ignores the bounds.
        creativity={"type": "number", "enum": list(CREATIVITY)},
        introduction=text,
    )
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def response_format(attrs: Mapping[str, str], family: str) -> dict[str, Any]:
    """The response_format for one draft, in the form the server takes."""
    return structured.response_format("persona", schema(attrs), family)


_STEER = "Let it shape who they are and what they think."
_FIELD_LINES = (
    "The fields:",
    "- name: what the others call them, a first name or a short name",
    "- full_name: their first and last name, a comma, and what they do",
    '- prompt: three or four sentences addressed to them ("You are a ..."): who they are, '
    "what they care about and how they speak",
    "- creativity: one of 0.2, 0.3, ..., 1.0; low for steady and careful, high for "
    "surprising and playful",
    "- introduction: one or two sentences in which they introduce themselves",
)
_TAKEN = "These names are taken; choose another:"
_SHAPED = "Reply with a JSON object holding these fields."
_AGAIN = "Your last answer could not be used:"
# A draft that copies four words in a row from its instructions recites them (small models
# do) instead of writing a persona; four stopwords in a row prove nothing.
RECITED_N = 4
_RECITED = {
    gram
    for line in (_SYSTEM, _STEER, *_FIELD_LINES, _TAKEN, _SHAPED, _AGAIN)
    for gram in ts.ngrams(ts.words(line), RECITED_N)
    if not all(w in ts.STOPWORDS for w in gram)
}


def recited(text: str) -> str | None:
    """Four words in a row of text copied from the instructions, or None."""
    for gram in ts.ngrams(ts.words(text), RECITED_N):
        if gram in _RECITED:
            return " ".join(gram)
    return None


def ask(
    brief: str,
    attrs: Mapping[str, str],
    taken: Sequence[str],
    problem: str = "",
    structured: bool = True,
) -> str:
    """The request for one draft: the brief, its attributes, the fields, the names taken
    (and, unless a schema shapes the reply, what the reply looks like)."""
    lines = [f"Write one persona for this brief: {brief}"]
    if attrs:
        have = "; ".join(f"{k}: {v}" for k, v in attrs.items())
        lines.append(f"This persona has: {have}. {_STEER}")
    lines += _FIELD_LINES
    if taken:
        lines.append(f"{_TAKEN} {', '.join(taken)}.")
    if structured:
        # No example: small models copy its placeholders ("...") instead of writing.
        lines.append(_SHAPED)
    else:
        keys = ", ".join(json.dumps(k) for k in (*attrs, *FIELDS))
        lines.append(f"Reply with only a JSON object with the keys {keys}, and nothing else.")
    if problem:
        lines.append(f"{_AGAIN} {problem}. Try again.")
    return "\n".join(lines)


def _json_object(text: str) -> Any:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object")
    return json.loads(text[start : end + 1])


def _clean(value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    text = sanitize(value)
    # One paragraph reads best in a persona file; names must be one line anyway.
    return " ".join(text.split()) if key in FIELDS else text


def validate(text: str, attrs: Mapping[str, str], taken: Sequence[str], source: str) -> Persona:
    """The persona in a reply, checked by the persona loader and against the names taken."""
    try:
        data = _json_object(text)
    except ValueError:
        cut = " (it was cut off)" if text.strip().startswith("{") else ""
        raise InputError(f"{source}: the reply is not a JSON object{cut}") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: the reply is not a JSON object")
    # The attributes were asked for to steer the model; the file records the ones assigned.
    fields = {k: _clean(v, k) for k, v in data.items() if k not in attrs}
    for key in fields:
        if key not in FIELDS and key in Persona.__dataclass_fields__:
            raise InputError(f'{source}: "{key}" is not for a draft; give only {", ".join(FIELDS)}')
    persona = Persona.from_dict(fields, source)  # the loader of hand-written files
    for key in ("name", "full_name"):
        if _PLACEHOLDER.search(getattr(persona, key)) or not any(
            c.isalpha() for c in getattr(persona, key)
        ):
            raise InputError(f'{source}: "{key}" is a placeholder; write a real one')
    for key in ("name", "full_name", "prompt", "introduction"):
        copied = recited(getattr(persona, key) or "")
        if copied:
            raise InputError(f'{source}: "{key}" copies the instructions ("{copied}"); '
                             "write it in your own words")  # fmt: skip
    if len(persona.prompt) < PROMPT_MIN:
        raise InputError(f'{source}: "prompt" is too short; write three or four sentences')
    folded = {n.casefold() for n in taken}
    if persona.name.casefold() in folded:
        raise InputError(f'{source}: "name" {persona.name!r} is already taken; choose another')
    if len(persona.name) > MAX_NAME:
        raise InputError(f'{source}: "name" is longer than {MAX_NAME} characters')
    return persona


class Drafter:
    """Asks one endpoint for drafts, with a schema until the server refuses one."""

    def __init__(
        self, client: ChatClient, seed: int, notice: Callable[[str], None] = lambda text: None
    ) -> None:
        self.client = client
        self.seed = seed
        self.notice = notice
        self.uses_schema: bool | None = None  # unknown until the server answers
        self.family: str | None = None  # what serves the endpoint, asked once

    def _request(self, brief: str, attrs: Mapping[str, str], taken: Sequence[str],
                 problem: str, seed: int) -> str:  # fmt: skip
        structured = self.uses_schema is not False
        question = ask(brief, attrs, taken, problem, structured)
        messages = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": question}]
        sampling = {}
        if structured:
            if self.family is None:
                self.family = str(getattr(self.client, "family", "unknown"))
            sampling["response_format"] = response_format(attrs, self.family)
        try:
            reply = self.client.complete(messages, temperature=TEMPERATURE,
                                         max_tokens=MAX_TOKENS, seed=seed, stream=False,
                                         sampling=sampling)  # fmt: skip
        except ServerError as exc:
            if self.uses_schema is not None or not sampling:
                raise
            self.uses_schema = False
            self.notice(
                f"roundtable: {self.client.where} refused the JSON schema ({str(exc)[:80]}); "
                "asking in plain text"
            )
            return self._request(brief, attrs, taken, problem, seed)
        except ContextOverflow as exc:
            raise ServerError(
                f"{self.client.where}: a draft request ({MAX_TOKENS} tokens for the reply) "
                f"does not fit the model's context ({exc.limit or 'unknown'} tokens); serve it "
                "with a larger context"
            ) from None
        if sampling:
            self.uses_schema = True
        return str(reply.text)

    def draft(
        self, index: int, brief: str, attrs: Mapping[str, str], taken: Sequence[str]
    ) -> tuple[Persona | None, str]:
        """(the persona, '') or (None, what was wrong with both tries)."""
        source, problem = f"draft {index + 1}", ""
        for attempt in range(2):
            try:
                seed = attempt_seed(self.seed, index, attempt)
                text = self._request(brief, attrs, taken, problem, seed)
                return validate(text, attrs, taken, source), ""
            except IncompleteStream:
                problem = "the reply was cut off"
            except InputError as exc:
                problem = str(exc).removeprefix(f"{source}: ")
        return None, problem


def write_new(directory: Path, stem: str, text: str) -> Path:
    """Write text to a new file stem.yaml (stem-2.yaml, ... if taken); never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)  # only once a draft is there to write
    for n in itertools.count(1):
        name = stem if n == 1 else f"{stem}-{n}"
        if any((directory / f"{name}{s}").exists() for s in (".json", ".yml", ".JSON", ".YML")):
            continue
        try:
            with (directory / f"{name}.yaml").open("x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            continue
        return directory / f"{name}.yaml"
    raise AssertionError("unreachable")


def report_error(drafted: int, count: int) -> RoundtableError | None:
    """The error when nothing could be drafted (exit 1), else None."""
    if drafted:
        return None
    return RoundtableError(
        f"no persona could be drafted ({count} asked for, each tried twice); see the warnings "
        "above; a larger model, or one served with JSON-schema support, may do better"
    )
