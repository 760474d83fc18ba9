from __future__ import annotations

import importlib.resources
import json
import shutil
from pathlib import Path

import pytest

from roundtable.errors import InputError
from roundtable.moderator import Phase, TurnPlan
from roundtable.personas import load_personas
from roundtable.prompts import TEMPLATES, Prompts
from roundtable.task import load_task

REPO = Path(__file__).resolve().parents[1]


def prompts_for(table) -> Prompts:
    return Prompts(table, load_task(table / "task"), load_personas(table / "participants"))


def plan_for(speaker: str, phase: Phase, topic: str | None, ask: str | None = None) -> TurnPlan:
    return TurnPlan(
        index=0,
        speaker=speaker,
        phase=phase,
        topic=topic,
        topic_index=None if topic is None else 0,
        new_topic=topic is not None,
        ask=ask,
        turns_left=3,
    )


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_with_the_example_table(table, name):
    p = prompts_for(table)
    persona = p.personas[0]
    plan = plan_for(persona.name, Phase.DISCUSSION, "Q?", ask="Ben")
    out = {
        "system.j2": lambda: p.system(),
        "entry.j2": lambda: p.entry("Ben", "hello", "turn"),
        "moderator.j2": lambda: p.moderator("topic", "Q?"),
        "persona.j2": lambda: p.persona(persona),
        "turn.j2": lambda: p.turn(persona, plan),
        "summary.j2": lambda: p.summary(persona),
        "recap.j2": lambda: p.recap(["Ben: Costs matter."]),
    }[name]()
    assert out.strip() and "{{" not in out and "{%" not in out


def test_system_prompt_is_shared_and_lists_everyone(table):
    p = prompts_for(table)
    system = p.system()
    assert all(f"- {x.name}: {x.full_name}" in system for x in p.personas)
    assert p.task.context.splitlines()[0] in system


def test_turn_has_persona_topic_and_nudge_and_summary_has_only_summary_instructions(table):
    p = prompts_for(table)
    persona = p.personas[1]
    turn = p.turn(persona, plan_for(persona.name, Phase.DISCUSSION, "Who pays?", ask="Chen"))
    assert persona.prompt in turn and "Who pays?" in turn and "ask Chen" in turn
    assert p.task.discuss_instructions.splitlines()[0] in turn
    summary = p.summary(persona)
    assert p.task.summarize_instructions.splitlines()[0] in summary
    assert p.task.discuss_instructions.splitlines()[0] not in summary and "question" not in summary


def test_persona_and_model_text_are_data_not_templates(table):
    path = table / "participants" / "role1.json"
    data = json.loads(path.read_text())
    data["prompt"] = "I say {{ task.context }} and {% raw %}"
    path.write_text(json.dumps(data))
    p = prompts_for(table)
    persona = p.personas[0]
    assert "I say {{ task.context }} and {% raw %}" in p.turn(
        persona, plan_for(persona.name, Phase.WRAP_UP, None)
    )
    assert p.entry("Ben", "{{ 7*7 }}", "turn") == "Ben: {{ 7*7 }}"


@pytest.mark.parametrize(
    "template,content,message",
    [
        ("turn.j2", "{% if persona %}no end", "turn.j2: line 1: template syntax error"),
        (
            "system.j2",
            "Hello.\n\n{{ task.contxt }}",
            "system.j2: line 3: 'roundtable.task.Task object' has no attribute 'contxt'",
        ),
        ("entry.j2", "{{ speaker }}:\n{{ speeker }}", "entry.j2: line 2: 'speeker' is undefined"),
    ],
    ids=["syntax", "attribute", "undefined"],
)
def test_template_mistakes_fail_at_start_naming_the_file_and_line(
    table, template, content, message
):
    (table / "prompts" / template).write_text(content)
    with pytest.raises(InputError) as exc:
        prompts_for(table)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "content,message",
    [
        ("{{ persona.name }}\n{{ persona.nmae }}\n", "line 2: 'roundtable.personas.Persona"),
        ("{{ persona.name }}\n{% if x %}\n", "line 2: template syntax error: Unexpected end"),
        ('{% include "nope.j2" %}', "line 1: template nope.j2 not found; put it in the"),
    ],
    ids=["undefined", "syntax", "missing-include"],
)
def test_a_mistake_in_an_included_template_names_that_file(table, content, message):
    (table / "prompts" / "parts.j2").write_text(content)
    turn = table / "prompts" / "turn.j2"
    turn.write_text(turn.read_text() + '\n{% include "parts.j2" %}\n')
    with pytest.raises(InputError) as exc:
        prompts_for(table)
    assert str(exc.value).startswith(f"{table / 'prompts' / 'parts.j2'}: {message}")


def test_recorded_sources_include_included_templates_and_render_the_same(table):
    (table / "prompts" / "parts.j2").write_text("Speak plainly, {{ persona.name }}.\n")
    turn = table / "prompts" / "turn.j2"
    turn.write_text(turn.read_text() + '\n{% include "parts.j2" %}\n')
    p = prompts_for(table)
    plan = plan_for(p.personas[0].name, Phase.DISCUSSION, "Q?")
    shutil.rmtree(table / "prompts")
    again = Prompts(table, p.task, p.personas, sources=p.sources())
    assert again.turn(p.personas[0], plan) == p.turn(p.personas[0], plan)
    assert "Speak plainly, Amara." in again.turn(p.personas[0], plan)


def built_in(name: str) -> str:
    return (importlib.resources.files("roundtable") / "templates" / name).read_text("utf-8")


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_example_tables_prompts_are_the_built_in_templates(name):
    assert (REPO / "prompts" / name).read_text("utf-8") == built_in(name)


def test_table_without_prompts_uses_the_built_in_templates(table):
    shutil.rmtree(table / "prompts")
    p = prompts_for(table)
    assert p.sources() == {name: built_in(name) for name in TEMPLATES}
    assert "Participants" in p.system() and p.warnings == []


def test_a_partial_prompts_folder_overrides_only_its_own_templates(table):
    shutil.rmtree(table / "prompts")
    (table / "prompts").mkdir()
    (table / "prompts" / "system.j2").write_bytes("\ufeffOur own system text.\n".encode())
    p = prompts_for(table)
    assert p.system() == "Our own system text."  # the BOM is not part of the template
    assert p.sources()["system.j2"] == "Our own system text.\n"
    assert {n: t for n, t in p.sources().items() if n != "system.j2"} == {
        n: built_in(n) for n in TEMPLATES if n != "system.j2"
    }


IGNORED = "not a template roundtable uses, so it is ignored"


@pytest.mark.parametrize(
    "files,warnings",
    [
        (["sytem.j2"], [f"sytem.j2: {IGNORED}; did you mean system.j2?"]),
        (
            ["Turn.J2", "summary.txt"],
            [
                f"Turn.J2: {IGNORED}; did you mean turn.j2?",
                f"summary.txt: {IGNORED}; did you mean summary.j2?",
            ],
        ),
        (["notes.j2"], [f"notes.j2: {IGNORED}; the templates are {', '.join(TEMPLATES)}"]),
        ([".sytem.j2", "README.md"], []),
    ],
    ids=["typo", "case-and-suffix", "no-close-name", "hidden-other-and-included"],
)
def test_unknown_template_files_are_warnings_with_the_closest_name(table, files, warnings):
    turn = table / "prompts" / "turn.j2"
    turn.write_text(turn.read_text() + '\n{% include "parts.j2" %}\n')
    (table / "prompts" / "parts.j2").write_text("")
    for name in files:
        (table / "prompts" / name).write_text("{{ nothing }}")
    p = prompts_for(table)
    assert p.warnings == [f"{table / 'prompts'}/{w}" for w in warnings]


@pytest.mark.parametrize("own", [True, False], ids=["example-copy", "built-in"])
def test_the_opening_announces_introductions_only_when_there_are_some(table, own):
    if not own:
        shutil.rmtree(table / "prompts")
    p = prompts_for(table)
    with_intros = p.moderator("opening", None, introductions=True)
    without = p.moderator("opening", None, introductions=False)
    assert with_intros == "Welcome to our roundtable. Let's begin with introductions."
    assert without == "Welcome to our roundtable."
    assert p.moderator("opening", None) == with_intros


def test_the_chat_layout_turn_leaves_the_persona_to_the_system_message(table):
    p = prompts_for(table)
    persona = p.personas[0]
    plan = plan_for(persona.name, Phase.DISCUSSION, "Q?")
    shared, chat = p.turn(persona, plan), p.turn(persona, plan, "chat")
    assert persona.prompt in shared and persona.prompt not in chat
    assert "Q?" in chat and p.persona(persona) in shared


def test_moderator_names_who_starts_a_topic_and_who_is_invited(table):
    p = prompts_for(table)
    assert p.moderator("topic", "Q?", "Ben") == "Our question now: Q? Ben, would you start?"
    assert p.moderator("topic", "Q?") == "Our question now: Q?"
    assert "Chen, what is your view?" in p.moderator("invite", None, "Chen")


def test_a_resumed_run_recorded_before_persona_j2_uses_the_built_in_one(table):
    recorded = prompts_for(table).sources()
    del recorded["persona.j2"]
    p = Prompts(table, load_task(table / "task"), load_personas(table / "participants"),
                sources=recorded)  # fmt: skip
    assert p.personas[0].prompt in p.persona(p.personas[0])
