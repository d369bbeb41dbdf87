"""Fixtures for the fault suite: servers that can be killed and restarted, runners, marks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.support import Runner
from tests.helpers import LiveServer


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Live servers on one SQLite file (tmp_path/stq.db); every one is killed afterwards."""
    servers: list[LiveServer] = []

    def start(heartbeat_timeout: float = 2.0, workers: int = 2, **env: str) -> LiveServer:
        env = {"STQ_HEARTBEAT_TIMEOUT": str(heartbeat_timeout), **env}
        server = LiveServer(db=tmp_path / "stq.db", workers=workers, env=env)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def runner_factory(tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    """``stq worker`` subprocesses working in tmp_path; every one is killed afterwards."""
    runners: list[Runner] = []

    def start(url: str, *args: str, **env: str) -> Runner:
        runner = Runner(url=url, cwd=tmp_path, args=list(args), env=dict(env)).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    """Where the marked workflows' commands leave proof that they ran."""
    return tmp_path / "marks"
