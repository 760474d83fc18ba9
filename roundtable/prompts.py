"""Jinja rendering of prompts/*.j2. Persona text and model output are passed as data only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from .errors import InputError
from .moderator import Phase, TurnPlan
from .personas import Persona
from .task import Task

TEMPLATES = ("system.j2", "entry.j2", "moderator.j2", "turn.j2", "summary.j2", "recap.j2")
MODERATOR_EVENTS = ("opening", "topic", "wrap_up", "summary")
# The templates that ship with roundtable: the example table's prompts/ folder.
DEFAULT_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


class Prompts:
    """Renders the table's templates; every template is checked when this is built."""

    def __init__(
        self,
        table_dir: Path,
        task: Task,
        personas: Sequence[Persona],
        sources: Mapping[str, str] | None = None,
    ) -> None:
        """Templates from table_dir/prompts (else the built-in ones), or from `sources`
        (the texts recorded in a transcript, so a resumed run renders as the original)."""
        loader: jinja2.BaseLoader
        if sources is not None:
            loader = jinja2.DictLoader(dict(sources))
        else:
            own = table_dir / "prompts"
            search = [str(p) for p in (own, DEFAULT_PROMPTS) if p.is_dir()]
            if not search:
                raise InputError(
                    f"{own}: prompts directory not found; copy prompts/ from the roundtable "
                    "repository into your table"
                )
            loader = jinja2.FileSystemLoader(search)
        self._env = jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.task = task
        self.personas = tuple(personas)
        self._templates = {name: self._load(name) for name in TEMPLATES}
        self._check()

    def sources(self) -> dict[str, str]:
        """The text of every template in use (recorded with each run)."""
        assert self._env.loader is not None
        return {name: self._env.loader.get_source(self._env, name)[0] for name in TEMPLATES}

    def _load(self, name: str) -> jinja2.Template:
        try:
            return self._env.get_template(name)
        except jinja2.TemplateNotFound:
            raise InputError(f"prompts/{name}: template not found") from None
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(
                f"{exc.filename or name}: line {exc.lineno}: template syntax error: {exc.message}"
            ) from None

    def _render(self, name: str, **values: Any) -> str:
        template = self._templates[name]
        try:
            return template.render(task=self.task, participants=self.personas, **values).strip()
        except jinja2.UndefinedError as exc:
            raise InputError(
                f"{template.filename}: {exc.message}; check the variable name"
            ) from None
        except jinja2.TemplateError as exc:
            raise InputError(f"{template.filename}: template error: {exc}") from None

    def _check(self) -> None:
        # Render everything once with real data, so a typo fails at start, not mid-run.
        persona = self.personas[0]
        other = self.personas[-1].name
        self.system()
        self.entry(persona.name, "text", "turn")
        for event in MODERATOR_EVENTS:
            self.moderator(event, self.task.questions[0], persona.name)
        for phase, ask in ((Phase.DISCUSSION, other), (Phase.WRAP_UP, None)):
            plan = TurnPlan(index=0, speaker=persona.name, phase=phase,
                            topic=self.task.questions[0], topic_index=0, new_topic=True,
                            ask=ask, turns_left=1)  # fmt: skip
            self.turn(persona, plan)
        self.summary(persona)
        self.recap([f"{persona.name}: text"])

    def system(self) -> str:
        """The shared system message: context, participants, ground rules."""
        return self._render("system.j2")

    def entry(self, speaker: str, text: str, kind: str) -> str:
        """One transcript entry (`kind`: turn, introduction or moderator)."""
        return self._render("entry.j2", speaker=speaker, text=text, kind=kind)

    def moderator(
        self,
        event: str,
        question: str | None,
        speaker: str | None = None,
        introductions: bool = True,
    ) -> str:
        """What the moderator says at an event (opening, topic, wrap_up, summary)."""
        return self._render(
            "moderator.j2",
            event=event,
            question=question,
            speaker=speaker,
            introductions=introductions,
        )

    def turn(self, persona: Persona, plan: TurnPlan) -> str:
        """The speaker-specific instructions for a discussion or wrap-up turn."""
        return self._render("turn.j2", persona=persona, plan=plan, phase=plan.phase.value)

    def summary(self, persona: Persona) -> str:
        """The speaker-specific instructions for the closing summary."""
        return self._render("summary.j2", persona=persona)

    def recap(self, lines: list[str]) -> str:
        """The recap that stands in for folded (oldest) transcript entries."""
        return self._render("recap.j2", lines=lines)
