"""roundtable: simulate a roundtable discussion between LLM personas."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Settings, load_settings  # noqa: E402
from .errors import InputError, RoundtableError, ServerError  # noqa: E402
from .moderator import Moderator, Phase, TurnPlan  # noqa: E402
from .personas import Persona, load_personas  # noqa: E402
from .task import Task, load_task  # noqa: E402
from .transcript import Turn, read_records  # noqa: E402

__all__ = [
    "InputError", "Moderator", "Persona", "Phase", "RoundtableError", "ServerError",
    "Settings", "Task", "Turn", "TurnPlan", "__version__", "load_personas",
    "load_settings", "load_task", "read_records",
]  # fmt: skip
