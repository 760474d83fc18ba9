from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
    """Start dummy servers on ephemeral loopback ports: dummy(fail_rate=0.3, ...)."""
    servers: list[BackgroundServer] = []

    def start(**config: Any) -> BackgroundServer:
        server = BackgroundServer(config)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
