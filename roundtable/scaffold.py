"""`roundtable init`: a ready table in a new directory, every file commented for editing."""

from __future__ import annotations

import argparse
import importlib.resources
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import DECLARATIONS, Declaration
from .errors import InputError, RoundtableError
from .personas import file_stem, persona_files
from .prompts import BUILT_IN
from .sanitize import sanitize
from .table import load_table

DEFAULT_TOPIC = "How should our town spend a one-off grant of one million euros?"
DEFAULT_PERSONAS = 4
WIDTH = 88  # comment lines are wrapped to this many columns


@dataclass(frozen=True)
class Starter:
    """A starter persona: plausible, distinct, and about no topic in particular."""

    name: str
    full_name: str
    prompt: str
    creativity: float
    introduction: str


STARTERS = (
    Starter("Maya", "Maya Lindgren, secondary-school teacher",
            "You teach fifteen-year-olds and run the school's debating club. You ask how an "
            "idea would work on a wet Monday morning with thirty tired people, and you bring "
            "up families and young people whenever they are forgotten. You are warm, patient "
            "and concrete.", 0.6,
            "I'm Maya, a secondary-school teacher. I'll keep asking what this means for kids."),
    Starter("Tomas", "Tomás Ferreira, owner of a small bakery",
            "You run a bakery with six employees and have survived two recessions. You think "
            "about costs, customers and paperwork, you are impatient with theory, and you say "
            "plainly when something would not survive contact with a real business.", 0.5,
            "Tomás Ferreira. I run a bakery, so I'll be asking who pays and how."),
    Starter("Priya", "Dr Priya Raman, public-health researcher",
            "You study what actually happens when policies meet people. You separate what the "
            "evidence shows from what is only plausible, you like a surprising number, and "
            "you change your mind when shown better data.", 0.7,
            "I'm Priya Raman. I research public health, so I'll ask what the evidence says."),
    Starter("Kwame", "Kwame Mensah, community organiser",
            "You organise tenants and volunteers in a poor part of town. You speak for the "
            "people who are not in the room, you distrust plans made without them, and you "
            "can be passionate, but you listen and you look for common ground.", 0.8,
            "Kwame Mensah, community organiser. I'm here for the people who aren't."),
    Starter("Ingrid", "Ingrid Halvorsen, retired civil engineer",
            "You spent forty years building and maintaining bridges and water pipes. You ask "
            "what happens in year ten, when the ribbon-cutting is forgotten and something "
            "breaks. You are dry, funny and sceptical of fashionable ideas.", 0.4,
            "Ingrid Halvorsen. I built things for forty years; I'll ask who maintains them."),
    Starter("Sofia", "Sofia Marchetti, philosophy lecturer",
            "You teach ethics. You ask what is fair, who decides, and what a proposal assumes "
            "without saying so. You enjoy a good objection, you make the best case for views "
            "you do not hold, and you keep it short.", 0.9,
            "I'm Sofia, I teach ethics. I'll be asking whether it's fair, not just whether "
            "it works."),
    Starter("Daniel", "Daniel Cho, software entrepreneur",
            "You founded two start-ups, one of which failed. You are optimistic about tools, "
            "quick to suggest a small experiment, and honest about what you got wrong before. "
            "You sometimes forget people who are not online.", 0.8,
            "Daniel Cho. I build software; I'll suggest we try things small and measure them."),
    Starter("Ruth", "Ruth Adebayo, town councillor",
            "You have sat on the town council for twelve years. You know the budget, the "
            "rules and what can win a vote, you are diplomatic, and you push the others to "
            "turn good ideas into something a council could actually pass.", 0.5,
            "Ruth Adebayo, councillor. My job is to turn what we say into something that passes."),
)  # fmt: skip

# What each persona field means: the comment above it in every starter file.
_FIELD_NOTES = {
    "name": "what the others call them: one line, unique in the table (any case), not "
    '"Moderator". Required.',
    "full_name": "shown in the participant list; the others may use it too. Required.",
    "prompt": "who they are and how they speak, sent to the model as written ({{ x }} stays "
    "as it is). Required.",
    "creativity": "0 to 1 (default 0.7): the sampling temperature is creativity x "
    "temperature_scale. Lower is steadier, higher is more surprising.",
    "talkativeness": "0 to 1 (default 0.5): how often the moderator's draw gives them the floor.",
    "color": "their colour in the terminal: red, green, yellow, blue, magenta, cyan, white, "
    'their bright_ forms, or "#rrggbb". Unset: one is chosen.',
    "introduction": "what they say when the participants introduce themselves (default: "
    '"I\'m <full_name>.").',
}

PERSONA_HEADER = """\
# A persona: one participant of the roundtable. Edit it, copy it to add another (a table
# needs at least two, each in its own .yaml, .yml or .json file), or delete it.
# Files are read in natural order (role2 before role10). Lines starting with # are comments.
# Also possible: model, base_url, api_key_env (this persona's own endpoint) and top_p,
# frequency_penalty, presence_penalty, seed, extra_body (its own sampling); see the README,
# "Personas". Check the table with: roundtable check --table DIR
"""

# How an unset optional field is shown (commented out) in a persona file.
_UNSET_EXAMPLES = {
    "creativity": "0.7",
    "talkativeness": "0.5",
    "color": "bright_blue",
    "introduction": "I'm ...",
}

_TASK_NOTES = {
    "context.txt": "The background every participant sees on every turn: the situation, "
    "facts and numbers, who the panel is advising. Replace the text below with your own.",
    "discuss_instructions.txt": "How to take a discussion turn: sent with every turn, to "
    "every participant.",
    "questions.txt": "The questions, one per line, discussed in order; when the discussion "
    "outlasts them, the last one continues. Blank lines are ignored.",
    "summarize_instructions.txt": "The only instructions for the closing summary, written by "
    "the participant who spoke most once the discussion is over.",
}

_DISCUSS = """\
Speak as yourself, in your own voice, in two to four sentences. Respond to what the
others just said: agree, disagree, build on it or ask a question. Be concrete. Do not
repeat points already made, do not summarise the discussion, and never write lines
for the other participants.
"""

_SUMMARIZE = """\
The discussion is over. Summarise it in one short paragraph: the main recommendations,
where the panel agreed, and where it still disagreed. Name who argued for what. Do not
add new arguments.
"""


def comment(text: str, indent: str = "") -> str:
    """Text as wrapped # comment lines."""
    lines = textwrap.wrap(text, WIDTH - len(indent) - 2, break_on_hyphens=False)
    return "".join(f"{indent}# {line}\n" for line in lines)


def _yaml_value(value: Any) -> str:
    """A value as one line of YAML flow text (quoted where YAML would misread it)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("...\n").strip()  # a bare scalar ends its document with ...


def _folded(value: str) -> str | None:
    """Text as a folded block (readable, wrapped), or None if YAML would read it back changed."""
    body = textwrap.fill(value, WIDTH - 2, break_on_hyphens=False, break_long_words=False)
    block = ">-\n" + textwrap.indent(body, "  ")
    try:
        same = yaml.safe_load("x: " + block) == {"x": value}
    except yaml.YAMLError:
        same = False
    return block if same else None


def persona_yaml(values: Mapping[str, Any], header: str = PERSONA_HEADER) -> str:
    """A persona file: every field with a comment saying what it does (unset ones shown
    commented out), values written so that the loader reads back exactly these."""
    out = [header]
    for key, note in _FIELD_NOTES.items():
        out.append("\n" + comment(note))
        value = values.get(key)
        if value is None:
            out.append(f"# {key}: {_UNSET_EXAMPLES[key]}\n")
        elif key == "prompt" and isinstance(value, str):
            out.append(f"{key}: {_folded(value) or _yaml_value(value)}\n")
        else:
            out.append(f"{key}: {_yaml_value(value)}\n")
    return "".join(out)


def _setting_block(d: Declaration) -> str:
    how = [f"Accepts {d.allowed}."]
    if d.flag is not None:
        metavar = "" if d.kind is bool else f" {d.metavar}"
        how.append(f"Flag {d.flag}{metavar}.")
    how.append(f"Environment variable {' or '.join(d.env)}.")
    if d.persona:
        how.append("A persona file may set its own.")
    example = "null" if d.default is None else _yaml_value(d.default)
    return (
        comment(f"{d.help[0].upper()}{d.help[1:]}.")
        + comment(" ".join(how))
        + f"# {d.name}: {example}\n"
    )


def settings_yaml() -> str:
    """roundtable.yaml with every declared setting, commented out at its default."""
    head = (
        "# roundtable settings. Every setting is listed below at its default, commented out:\n"
        "# remove the leading '# ' of a setting's last line to change it. Precedence: flag >\n"
        "# environment (ROUNDTABLE_<NAME>) > this file > default. The API key itself is never\n"
        "# written here: api_key_env names the environment variable that holds it.\n"
    )
    return head + "".join("\n" + _setting_block(d) for d in DECLARATIONS.values())


def _one_line(topic: str) -> str:
    text = " ".join(sanitize(topic).split())
    if not text:
        raise InputError('--topic: must not be empty; e.g. --topic "Should we ban cars?"')
    if len(text) > 300:
        raise InputError(f"--topic: {len(text)} characters; keep it under 300 (the details "
                         "belong in task/context.txt)")  # fmt: skip
    return text


def questions(topic: str) -> list[str]:
    """The starter questions: the topic itself first (as a question), then general ones."""
    first = topic if topic.endswith("?") else f"What should be done about {topic}?"
    return [
        first,
        "Who would gain and who would lose from what has been proposed, and how could it be "
        "made fairer?",
        "What could go wrong, and what would change your mind?",
        "What should happen first, and how will we know in a year whether it worked?",
    ]


def task_files(topic: str) -> dict[str, str]:
    """The task/ files for a topic, each opening with comments on what it is for."""
    context = textwrap.fill(
        "A panel of people from different walks of life meets for one hour to discuss a "
        f"single topic: {topic} Each speaks from their own experience. The panel's aim is "
        "advice that most of its members can accept.",
        WIDTH,
        break_on_hyphens=False,
    )
    bodies = {
        "context.txt": context + "\n",
        "discuss_instructions.txt": _DISCUSS,
        "questions.txt": "\n".join(questions(topic)) + "\n",
        "summarize_instructions.txt": _SUMMARIZE,
    }
    note = " Lines starting with # are comments: they are not sent to the model."
    return {name: comment(_TASK_NOTES[name] + note) + body for name, body in bodies.items()}


def table_files(personas: int, topic: str) -> dict[str, str]:
    """Every file of a new table, by path relative to its directory."""
    files = {
        f"participants/{file_stem(s.name)}.yaml": persona_yaml(asdict(s))
        for s in STARTERS[:personas]
    }
    files.update({f"task/{name}": text for name, text in task_files(topic).items()})
    files["roundtable.yaml"] = settings_yaml()
    return files


def _check_target(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: exists and is not a directory; choose another DIR")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise InputError(
            f"{directory}: directory is not empty; choose a new one, or pass --force to write "
            "the table's files into it (files of the same name are replaced, others are kept)"
        )


def init_table(
    directory: Path,
    personas: int = DEFAULT_PERSONAS,
    topic: str | None = None,
    *,
    force: bool = False,
    with_prompts: bool = False,
) -> list[Path]:
    """Write a new table into directory; returns the files written."""
    if not 2 <= personas <= len(STARTERS):
        hint = (
            f"for more, start with {len(STARTERS)} and draft the rest with `roundtable "
            "personas draft`"
            if personas > len(STARTERS)
            # Fewer than two is no roundtable; drafted personas can replace the starters.
            else "a table starts with at least two personas; replace them later with your "
            "own (or drafted ones: `roundtable personas draft`)"
        )
        raise InputError(f"--personas: must be from 2 to {len(STARTERS)}, got {personas}; {hint}")
    text = _one_line(topic) if topic is not None else DEFAULT_TOPIC
    _check_target(directory, force)
    files = table_files(personas, text)
    if with_prompts:
        built_in = importlib.resources.files("roundtable") / BUILT_IN
        for item in sorted(built_in.iterdir(), key=lambda t: t.name):
            if item.name.endswith(".j2"):
                files[f"prompts/{item.name}"] = item.read_text(encoding="utf-8")
    written = []
    try:
        for relative, content in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise InputError(f"{directory}: cannot write the table ({exc.strerror})") from None
    return written


def add_parser(sub: Any) -> None:
    """Add `init` to the CLI's subparsers."""
    p = sub.add_parser(
        "init",
        help="create a new table to edit: personas, task and settings, all commented",
        description="Create a ready table in DIR: participants/ with starter personas, task/ "
        "and roundtable.yaml with every setting, each file commented. The built-in "
        "templates are used unless --with-prompts copies them into prompts/ for editing.",
    )
    p.add_argument("directory", type=Path, metavar="DIR", help="the new table's directory")
    p.add_argument(
        "--personas",
        type=int,
        default=DEFAULT_PERSONAS,
        metavar="N",
        help=f"how many starter personas (2 to {len(STARTERS)}; default {DEFAULT_PERSONAS})",
    )
    p.add_argument(
        "--topic",
        metavar="TEXT",
        help="what the table discusses: written into the context and the first question",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")
    p.add_argument(
        "--with-prompts",
        action="store_true",
        help="copy the built-in templates into DIR/prompts/ to edit them",
    )


def _kept_personas(participants: Path, written: list[Path]) -> list[Path]:
    """The persona files in participants/ that init did not write (kept by --force)."""
    if not participants.is_dir():
        return []
    return [p for p in persona_files(participants) if p not in set(written)]


def main(args: argparse.Namespace) -> int:
    """Run `roundtable init`; returns the exit code."""
    directory: Path = args.directory
    written = init_table(directory, args.personas, args.topic, force=args.force,
                         with_prompts=args.with_prompts)  # fmt: skip
    print(f"roundtable: created a table in {directory} ({len(written)} files)")
    kept = _kept_personas(directory / "participants", written)
    if kept:
        # --force keeps files it does not write: the table has more personas than asked for.
        total = len(persona_files(directory / "participants"))
        print(f"roundtable: note: {directory / 'participants'} now holds {total} persona files: "
              f"{total - len(kept)} written now and {len(kept)} kept from before "
              f"({', '.join(p.name for p in kept)}); delete any you do not want")  # fmt: skip
    try:
        load_table(directory, env={})
    except RoundtableError as exc:
        # --force into a directory whose own files clash (e.g. a duplicate name).
        print(f"roundtable: warning: the table does not load yet: {exc}")
        return 0
    shown = shlex.quote(str(directory))
    print(
        f"  next: edit {shown}/participants/ and {shown}/task/, then\n"
        f"    roundtable check --table {shown}\n"
        f"    roundtable --table {shown}            # offline dummy model\n"
        f"    roundtable --table {shown} --base-url http://localhost:8000/v1"
    )
    return 0
