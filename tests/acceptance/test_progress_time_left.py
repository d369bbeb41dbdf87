"""The progress line of ``stq submit --wait`` shows the server's time left, as the API says it.

The command runs on a pseudo-terminal (its progress is then the one line
redrawn in place) against a live server; the test plays the runner over HTTP.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import requests

from stq.cli.progress import ESTIMATE_EVERY, Progress, time_left_text
from stq.worker.client import Client
from tests.acceptance.support import STQ, write
from tests.helpers import LiveServer, scrubbed_env

#: build (1m30s) then test (45s), beside lint (30s): 2m 15s on the critical path.
ESTIMATED = """\
name: estimated
tasks:
  build: {command: './build.sh', duration: 1m30s}
  test: {command: './test.sh', duration: 45, depends_on: [build]}
  lint: {command: './lint.sh', duration: 30}
"""
SHOWN = re.compile(r"\(time left (~[^)]*)\)")


class Terminal:
    """A command whose stdout and stderr are a pseudo-terminal the test reads."""

    def __init__(self, *args: str):
        main, other = pty.openpty()
        self.main = main
        self.text = ""
        self.process = subprocess.Popen(
            [STQ, *args],
            stdin=subprocess.DEVNULL,
            stdout=other,
            stderr=other,
            env=scrubbed_env({"COLUMNS": "200"}),
            start_new_session=True,
        )
        os.close(other)

    def read_until(self, pattern: re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        """Read what the command writes until ``pattern`` matches it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := pattern.search(self.text):
                return found
            self._read(deadline - time.monotonic())
        raise AssertionError(f"never printed {pattern.pattern!r}: {self.text[-500:]!r}")

    def wait(self, timeout: float = 20.0) -> int:
        """Read to the end (the command must never block on a full terminal); its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.main], [], [], max(0.0, timeout))
        if ready:
            try:
                self.text += os.read(self.main, 65536).decode(errors="replace")
            except OSError:  # the command closed the terminal
                time.sleep(0.05)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        os.close(self.main)


def test_submit_wait_shows_the_time_left_the_api_answers(tmp_path: Path, start_server) -> None:
    server: LiveServer = start_server()
    path = write(tmp_path / "w.yaml", ESTIMATED)
    terminal = Terminal("submit", str(path), "--wait", "--server", server.url)
    try:
        wf_id = terminal.read_until(re.compile(r"^(w\d+)\r?\n")).group(1)
        shown = terminal.read_until(SHOWN).group(1)
        answer = requests.get(f"{server.url}/api/v1/workflows/{wf_id}", timeout=10).json()
        assert answer["time_left"] == 135  # no runner: the estimate stands still
        assert shown == time_left_text(answer) == "~2m 15s"
        requests.post(f"{server.url}/api/v1/workflows/{wf_id}/cancel", timeout=10)
        assert terminal.wait() == 1
    finally:
        terminal.close()
    assert "Traceback" not in terminal.text


class Steps:
    """A clock the test moves by hand (for when the time left is read again)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_is_read_again_every_few_seconds_not_at_every_poll(
    tmp_path: Path, start_server
) -> None:
    server: LiveServer = start_server()
    doc = {"name": "two", "tasks": {"a": {"command": "true", "duration": 60},
                                    "b": {"command": "true", "duration": 20}}}  # fmt: skip
    wf_id = requests.post(f"{server.url}/api/v1/workflows", json=doc, timeout=10).json()["id"]
    clock = Steps()
    client = Client(server.url)
    try:
        progress = Progress(client, io.StringIO(), tty=True, clock=clock)
        summary = client.workflow(wf_id, tasks=False)
        assert progress._time_left(summary) == "~1m 00s"
        claim = requests.post(
            f"{server.url}/api/v1/attempts/claim", json={"runner": "r", "wait": 0}, timeout=10
        ).json()
        assert claim["task_name"] == "a"
        result = {"status": "completed", "exit_code": 0, "output": ""}
        url = f"{server.url}/api/v1/attempts/{claim['attempt_id']}/result"
        requests.post(url, json=result, timeout=10).raise_for_status()
        clock.now += ESTIMATE_EVERY / 2
        assert progress._time_left(summary) == "~1m 00s"  # not due yet: the last reading
        clock.now += ESTIMATE_EVERY / 2
        assert progress._time_left(summary) == "~20s"  # read again: only b is left

        assert Progress(client, io.StringIO(), tty=False)._time_left(summary) == ""  # a log
        big = Progress(client, io.StringIO(), tty=True)
        big.estimate_max_tasks = 1  # two tasks are "too many" to read every one of
        assert big._time_left(summary) == ""
    finally:
        client.close()
