from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dummy_server import BackgroundServer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No test sees the developer's OpenAI/roundtable settings or writes outside tmp_path."""
    for key in list(os.environ):
        if key.startswith(("OPENAI_", "ROUNDTABLE_", "DUMMY_SERVER_")) or key == "NO_COLOR":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def dummy() -> Iterator[Callable[..., BackgroundServer]]:
    """Start dummy servers on ephemeral loopback ports: dummy(fail_rate=0.3, ...);
    dummy(record=True) keeps the chat requests' bodies in `server.received`."""
    servers: list[BackgroundServer] = []

    def start(record: bool = False, **config: Any) -> BackgroundServer:
        server = BackgroundServer(config, record=record)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A copy of the example table (participants, task, prompts, roundtable.yaml)."""
    dest = tmp_path / "table"
    dest.mkdir()
    for name in ("participants", "task", "prompts"):
        shutil.copytree(REPO / name, dest / name)
    shutil.copy(REPO / "roundtable.yaml", dest / "roundtable.yaml")
    return dest
