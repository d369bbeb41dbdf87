"""A runner stopped while its long poll is open takes nothing with it.

Its claim goes on waiting in the server; were it then to claim a task that
became claimable, the attempt would be held for nobody until the heartbeat
timeout, and with ``max_attempts: 1`` the task would fail without running.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import LiveServer, start_worker, wait_until

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


def _runner_state(server: LiveServer, name: str) -> str | None:
    listed = requests.get(f"{server.url}/api/v1/runners", timeout=10).json()["runners"]
    return next((r["state"] for r in listed if r["name"] == name), None)


def _ended(server: LiveServer, task_id: str) -> dict | None:
    task = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()
    return task if task["state"] in ("completed", "failed") else None


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_real_runner_stopped_mid_poll_takes_nothing(
    server: LiveServer, tmp_path: Path, how: signal.Signals
) -> None:
    doomed = start_worker(server, "doomed", tmp_path)
    try:
        assert wait_until(lambda: _runner_state(server, "doomed") == "idle", what="doomed polls")
        doomed.send_signal(how)
        doomed.wait(10)
    finally:
        doomed.kill()
    doc = {"name": "once", "tasks": {"a": {"command": "true", "max_attempts": 1}}}
    posted = requests.post(f"{server.url}/api/v1/workflows", json=doc, timeout=10)
    assert posted.status_code == 201
    task_id = posted.json()["tasks"][0]["id"]
    alive = start_worker(server, "alive", tmp_path)
    try:
        task = wait_until(lambda: _ended(server, task_id), what="the task to end")
    finally:
        alive.terminate()
        alive.wait(10)
    assert task["state"] == "completed"
    assert [(a["runner"], a["number"]) for a in task["attempts"]] == [("alive", 1)]
