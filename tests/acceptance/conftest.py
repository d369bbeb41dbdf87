"""Fixtures for driving the installed ``stq`` against live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.support import Runner
from tests.helpers import LiveServer


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start live servers with extra environment (e.g. a short heartbeat timeout)."""
    servers: list[LiveServer] = []

    def start(heartbeat_timeout: float | None = None, workers: int = 2) -> LiveServer:
        env = {"STQ_HEARTBEAT_TIMEOUT": str(heartbeat_timeout)} if heartbeat_timeout else {}
        server = LiveServer(db=tmp_path / f"stq{len(servers)}.db", workers=workers, env=env)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.kill()  # state is committed; waiting out abandoned long polls only costs time


@pytest.fixture
def start_runner(tmp_path: Path) -> Iterator[Callable[..., Runner]]:
    """Start ``stq worker`` subprocesses in tmp_path; every one is killed afterwards."""
    runners: list[Runner] = []

    def start(url: str, *args: str) -> Runner:
        runner = Runner(url=url, cwd=tmp_path, args=list(args)).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()
