from __future__ import annotations

import json

import pytest

from roundtable.errors import InputError
from roundtable.moderator import Phase, TurnPlan
from roundtable.personas import load_personas
from roundtable.prompts import TEMPLATES, Prompts
from roundtable.task import load_task


def prompts_for(table) -> Prompts:
    return Prompts(table, load_task(table / "task"), load_personas(table / "participants"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_with_the_example_table(table, name):
    p = prompts_for(table)
    persona = p.personas[0]
    plan = TurnPlan(
        index=0,
        speaker=persona.name,
        phase=Phase.DISCUSSION,
        topic="Q?",
        topic_index=0,
        new_topic=True,
        ask="Ben",
        turns_left=3,
    )
    out = {
        "system.j2": lambda: p.system(),
        "entry.j2": lambda: p.entry("Ben", "hello", "turn"),
        "moderator.j2": lambda: p.moderator("topic", "Q?"),
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
    turn = p.turn(
        persona,
        TurnPlan(
            index=3,
            speaker=persona.name,
            phase=Phase.DISCUSSION,
            topic="Who pays?",
            topic_index=1,
            new_topic=False,
            ask="Chen",
            turns_left=4,
        ),
    )
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
        persona,
        TurnPlan(
            index=0,
            speaker=persona.name,
            phase=Phase.WRAP_UP,
            topic=None,
            topic_index=None,
            new_topic=False,
            ask=None,
            turns_left=1,
        ),
    )
    assert p.entry("Ben", "{{ 7*7 }}", "turn") == "Ben: {{ 7*7 }}"


@pytest.mark.parametrize(
    "template,content,message",
    [
        ("turn.j2", "{% if persona %}no end", "turn.j2: line 1: template syntax error"),
        (
            "system.j2",
            "{{ task.contxt }}",
            "system.j2: 'roundtable.task.Task object' has no attribute 'contxt'",
        ),
        ("entry.j2", "{{ speeker }}", "entry.j2: 'speeker' is undefined"),
    ],
    ids=["syntax", "attribute", "undefined"],
)
def test_template_mistakes_fail_at_start_naming_the_file(table, template, content, message):
    (table / "prompts" / template).write_text(content)
    with pytest.raises(InputError) as exc:
        prompts_for(table)
    assert message in str(exc.value)


def test_table_without_prompts_uses_the_built_in_templates(table):
    import shutil

    shutil.rmtree(table / "prompts")
    assert "Participants" in prompts_for(table).system()
