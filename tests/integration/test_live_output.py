"""A real runner streams a command's output while it runs, and stops it within 2 s of a cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import LiveServer, start_worker, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(db=tmp_path / "stq.db", workers=2).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def runner(server: LiveServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker(server, "live", tmp_path)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def running_attempt(server: LiveServer, task_id: str) -> str:
    def attempt() -> str | None:
        task = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()
        return task["attempts"][-1]["id"] if task["state"] == "in_process" else None

    return wait_until(attempt, timeout=20, what="the attempt to start")


def test_output_is_readable_while_the_command_runs(
    server: LiveServer, runner: subprocess.Popen[bytes]
) -> None:
    _, task_id = submit_to(server, "echo first; sleep 4; echo second", max_attempts=1)
    aid = running_attempt(server, task_id)
    started = time.monotonic()

    def first() -> requests.Response | None:
        got = requests.get(f"{server.url}/api/v1/attempts/{aid}/output", timeout=10)
        return got if "first" in got.text else None

    got = wait_until(first, timeout=10, what="the first line")
    assert time.monotonic() - started < 3  # streamed within about a second, not at the end
    assert got.headers["STQ-Attempt-Finished"] == "false"
    assert "second" not in got.text
    end = int(got.headers["STQ-Output-End"])

    def finished() -> requests.Response | None:
        params = {"offset": end}
        got = requests.get(f"{server.url}/api/v1/attempts/{aid}/output", params=params, timeout=10)
        return got if got.headers["STQ-Attempt-Finished"] == "true" else None

    rest = wait_until(finished, timeout=20, what="the attempt's end")
    assert rest.text == "second\n"  # what came after the offset, once, with the result


def test_a_cancel_stops_the_command_within_two_seconds(
    server: LiveServer, runner: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    wid, task_id = submit_to(server, f"echo $$ > {pid_file}; exec sleep 120", max_attempts=1)
    aid = running_attempt(server, task_id)
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10))
    time.sleep(1.5)  # well into the command (its first heartbeat already held)
    cancelled = time.monotonic()
    assert requests.post(f"{server.url}/api/v1/workflows/{wid}/cancel", timeout=10).ok
    wait_until(lambda: not _alive(pid), timeout=10, interval=0.01, what="the command to end")
    assert time.monotonic() - cancelled < 2.0
    task = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()
    assert task["state"] == "failed" and task["reason"] == "cancelled"
    assert task["attempts"][0]["id"] == aid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_late_success_stops_the_newer_attempt_and_says_why(tmp_path: Path) -> None:
    """Attempt 1's runner freezes (presumed lost), attempt 2 starts elsewhere, then the
    first command's success arrives after all: attempt 2's command is stopped, and its
    reason says an earlier attempt completed the task, not that anything was cancelled."""
    server = LiveServer(
        db=tmp_path / "stq.db", workers=2, env={"STQ_HEARTBEAT_TIMEOUT": "2"}
    ).start()
    started: list[subprocess.Popen[bytes]] = []
    try:
        command = 'if [ "$STQ_ATTEMPT_NUMBER" = 1 ]; then sleep 3; else exec sleep 60; fi'
        _, task_id = submit_to(server, command, max_attempts=2)
        first = start_worker(server, "first", tmp_path)
        started.append(first)
        running_attempt(server, task_id)
        first.send_signal(signal.SIGSTOP)  # frozen: no heartbeat, no result (its command runs)
        started.append(start_worker(server, "second", tmp_path))

        def second_running() -> bool:
            task = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()
            return len(task["attempts"]) == 2 and task["attempts"][1]["status"] == "running"

        wait_until(second_running, timeout=20, what="attempt 2 to run")
        first.send_signal(signal.SIGCONT)  # attempt 1's success is reported, late
        task = wait_until(
            lambda: _ended_attempts(server, task_id, 2), timeout=20, what="both attempts' end"
        )
    finally:
        for proc in started:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.wait(20)
        server.stop()
    assert task["state"] == "completed"
    one, two = task["attempts"]
    assert one["status"] == "completed"
    assert two["status"] == "failed"
    assert two["reason"] == "stopped: an earlier attempt completed the task"


def submit_to(server: LiveServer, command: str, max_attempts: int) -> tuple[str, str]:
    doc = {"name": "w", "tasks": {"a": {"command": command, "max_attempts": max_attempts}}}
    posted = requests.post(f"{server.url}/api/v1/workflows", json=doc, timeout=10)
    assert posted.status_code == 201, posted.text
    return posted.json()["id"], posted.json()["tasks"][0]["id"]


def _ended_attempts(server: LiveServer, task_id: str, count: int) -> dict | None:
    task = requests.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10).json()
    attempts = task["attempts"]
    done = len(attempts) == count and all(a["status"] != "running" for a in attempts)
    return task if done else None
