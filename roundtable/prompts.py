"""Jinja rendering of a table's templates. Persona text and model output are data only."""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.loaders import split_template_path

from .config import LAYOUTS
from .errors import InputError
from .moderator import Phase, TurnPlan
from .personas import Persona
from .task import Task

TEMPLATES = (
    "system.j2", "entry.j2", "moderator.j2", "persona.j2", "turn.j2", "summary.j2", "recap.j2",
)  # fmt: skip
MODERATOR_EVENTS = ("opening", "topic", "invite", "wrap_up", "summary")
# Built-in templates ship inside the package, so a table without prompts/ works from a wheel.
BUILT_IN = "templates"

_Source = tuple[str, str, Callable[[], bool]]


class Prompts:
    """Renders the table's templates; every template is checked when this is built."""

    def __init__(
        self,
        table_dir: Path,
        task: Task,
        personas: Sequence[Persona],
        sources: Mapping[str, str] | None = None,
    ) -> None:
        """Templates from table_dir/prompts, each falling back to the built-in one, or from
        `sources` (the texts recorded in a transcript, so a resumed run renders as the original).
        """
        self._own = table_dir / "prompts"
        self._recorded = dict(sources) if sources is not None else None
        self._filenames: set[str] = set()
        self._texts: dict[str, str] = {}  # name -> the text as loaded, for the run record
        self._env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._find),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.task = task
        self.personas = tuple(personas)
        self._templates = {name: self._load(name) for name in TEMPLATES}
        self._used = self._referenced()
        # Mistakes that do not stop a run (an unknown template name); the caller prints them.
        self.warnings: list[str] = [] if self._recorded is not None else self._unknown_files()
        self._check()

    def sources(self) -> dict[str, str]:
        """The text of every template in use, included ones too, as loaded (for the run record)."""
        names = TEMPLATES + tuple(sorted(self._used - set(TEMPLATES)))
        return {name: self._texts[name] for name in names if name in self._texts}

    def _find(self, name: str) -> _Source | None:
        # split_template_path refuses "..", so an include cannot leave the prompts folder.
        parts = split_template_path(name)
        if self._recorded is not None:
            if name in self._recorded:
                return self._source(
                    name, self._recorded[name], f"prompts/{name} (recorded in the run)"
                )
            # A run recorded before this template existed: the built-in one stands in.
            return self._built_in(name, parts)
        own = self._own.joinpath(*parts)
        if own.is_file():
            try:
                text = own.read_text(encoding="utf-8-sig")  # a BOM is not part of the template
            except UnicodeDecodeError:
                raise InputError(f"{own}: not UTF-8 text; save it as UTF-8") from None
            return self._source(name, text, str(own))
        return self._built_in(name, parts)

    def _built_in(self, name: str, parts: Sequence[str]) -> _Source | None:
        built_in = importlib.resources.files("roundtable") / BUILT_IN
        for part in parts:
            built_in = built_in / part
        if built_in.is_file():
            return self._source(
                name,
                built_in.read_text(encoding="utf-8"),
                f"roundtable/{BUILT_IN}/{name} (built-in)",
            )
        return None

    def _source(self, name: str, text: str, filename: str) -> _Source:
        self._filenames.add(filename)
        self._texts[name] = text
        return text, filename, lambda: True

    def _load(self, name: str) -> jinja2.Template:
        try:
            template = self._env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise InputError(f"prompts/{exc.name}: template not found") from None
        except jinja2.TemplateSyntaxError as exc:
            raise _syntax_error(exc, name) from None
        # Every render copies the globals; Jinja keeps them as a ChainMap, which copies
        # several times slower than the plain dict they can be (nothing changes them).
        template.globals = dict(template.globals)
        return template

    def _unknown_files(self) -> list[str]:
        """A warning for each file in prompts/ that looks like a template but is never used."""
        if not self._own.is_dir():
            return []
        used = self._used
        stems = {name.removesuffix(".j2") for name in TEMPLATES}
        warnings = []
        for path in sorted(self._own.iterdir()):
            name = path.name
            if name.startswith(".") or not path.is_file() or name in used:
                continue
            if not (name.lower().endswith(".j2") or path.stem.lower() in stems):
                continue
            close = difflib.get_close_matches(name.lower(), TEMPLATES, n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else f"the templates are {', '.join(TEMPLATES)}"
            )
            warnings.append(f"{path}: not a template roundtable uses, so it is ignored; {hint}")
        return warnings

    def _referenced(self) -> set[str]:
        """The templates in use: the known ones and whatever they include, import or extend."""
        assert self._env.loader is not None
        seen: set[str] = set()
        todo = list(TEMPLATES)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                source, filename, _ = self._env.loader.get_source(self._env, name)
                refs = jinja2.meta.find_referenced_templates(
                    self._env.parse(source, name, filename)
                )
            except jinja2.TemplateNotFound:
                continue  # a missing include fails when it is rendered, naming the file
            except jinja2.TemplateSyntaxError as exc:
                raise _syntax_error(exc, name) from None
            todo.extend(ref for ref in refs if ref is not None)
        return seen

    def _where(self, exc: BaseException, default: str) -> str:
        filename, line = default, None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in self._filenames:
                filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        return f"{filename}: line {line}" if line is not None else filename

    def _render(self, name: str, **values: Any) -> str:
        template = self._templates[name]
        try:
            return template.render(task=self.task, participants=self.personas, **values).strip()
        except jinja2.UndefinedError as exc:
            where = self._where(exc, template.filename or name)
            raise InputError(f"{where}: {exc.message}; check the variable name") from None
        except jinja2.TemplateNotFound as exc:
            where = self._where(exc, template.filename or name)
            raise InputError(
                f"{where}: template {exc.name} not found; put it in the table's prompts/ folder"
            ) from None
        except jinja2.TemplateError as exc:
            where = self._where(exc, template.filename or name)
            raise InputError(f"{where}: template error: {exc}") from None

    def _check(self) -> None:
        # Render everything once with real data, so a typo fails at start, not mid-run.
        persona = self.personas[0]
        other = self.personas[-1].name
        question = self.task.questions[0]
        self.system()
        self.entry(persona.name, "text", "turn")
        for event in MODERATOR_EVENTS:
            for introductions in (True, False):
                self.moderator(event, question, persona.name, introductions=introductions)
        for phase, ask in ((Phase.DISCUSSION, other), (Phase.WRAP_UP, None)):
            plan = TurnPlan(
                index=0,
                speaker=persona.name,
                phase=phase,
                topic=question,
                topic_index=0,
                new_topic=True,
                ask=ask,
                turns_left=1,
            )
            for layout in LAYOUTS:
                self.turn(persona, plan, layout)
        self.persona(persona)
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

    def persona(self, persona: Persona) -> str:
        """Who the speaker is (the chat layout's system message ends with it)."""
        return self._render("persona.j2", persona=persona)

    def turn(self, persona: Persona, plan: TurnPlan, layout: str = "shared") -> str:
        """The speaker-specific instructions for a discussion or wrap-up turn."""
        return self._render(
            "turn.j2", persona=persona, plan=plan, phase=plan.phase.value, layout=layout
        )

    def summary(self, persona: Persona) -> str:
        """The speaker-specific instructions for the closing summary."""
        return self._render("summary.j2", persona=persona)

    def recap(self, lines: list[str]) -> str:
        """The recap that stands in for folded (oldest) transcript entries."""
        return self._render("recap.j2", lines=lines)


def _syntax_error(exc: jinja2.TemplateSyntaxError, name: str) -> InputError:
    return InputError(
        f"{exc.filename or name}: line {exc.lineno}: template syntax error: {exc.message}"
    )
