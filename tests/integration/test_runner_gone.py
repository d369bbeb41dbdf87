"""A runner stopped while its long poll is open takes nothing with it.

Its claim goes on waiting in the server; were it then to claim a task that
became claimable, the attempt would be held for nobody until the heartbeat
timeout, and with ``max_attempts: 1`` the task would fail without running.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import LiveServer, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(db=tmp_path / "stq.db", workers=1).start()
    try:
        yield live
    finally:
        live.stop()


def open_long_poll(server: LiveServer, runner: str) -> socket.socket:
    """A runner's claim, sent and left waiting (as a runner killed mid-poll leaves it)."""
    body = json.dumps({"runner": runner, "wait": 20}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        b"POST /api/v1/attempts/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    return sock


def test_a_task_submitted_after_a_runner_died_mid_poll_runs_once_elsewhere(
    server: LiveServer,
) -> None:
    dead = open_long_poll(server, "killed")
    time.sleep(0.5)  # the claim is waiting in the server (nothing to poll for from here)
    dead.close()  # the runner is gone; its request is still being served
    doc = {"name": "once", "tasks": {"a": {"command": "true", "max_attempts": 1}}}
    posted = requests.post(f"{server.url}/api/v1/workflows", json=doc, timeout=10)
    assert posted.status_code == 201
    task_id = posted.json()["tasks"][0]["id"]

    def claim_alive() -> dict | None:
        answer = requests.post(
            f"{server.url}/api/v1/attempts/claim", json={"runner": "alive", "wait": 1}, timeout=10
        )
        return answer.json() if answer.status_code == 200 else None

    claim = wait_until(claim_alive, timeout=10, what="the live runner's claim")
    assert claim["task_id"] == task_id and claim["attempt_number"] == 1
    attempts = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()["attempts"]
    assert [a["runner"] for a in attempts] == ["alive"]
