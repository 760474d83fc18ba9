"""The web viewer: runs and studies in a browser, live while a run is written, and the
self-contained HTML export."""

from __future__ import annotations

from .render import standalone_html

__all__ = ["create_app", "standalone_html"]


def __getattr__(name: str) -> object:
    # Flask is only imported by those who serve: `export --format html` needs none of it.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
