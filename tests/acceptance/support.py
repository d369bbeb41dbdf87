"""Driving the installed ``stq`` binary: commands, runners, workflow files, the API."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.helpers import BIN, scrubbed_env, wait_until

STQ = str(BIN / "stq")
TIMEOUT = 60.0


def stq(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout=TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``stq ARGS`` to the end; its output as text."""
    return subprocess.run(
        [STQ, *args],
        env=scrubbed_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> None:
    """The contract for every failure: the exit code, one line, no traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stq"), result.stderr


@dataclass
class Runner:
    """``stq worker`` as a subprocess, stopped (and reaped) by ``stop``."""

    url: str
    cwd: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None

    def start(self) -> Runner:
        log = open(self.cwd / f"runner-{id(self)}.log", "w")
        self.log_path = Path(log.name)
        with log:
            self.process = subprocess.Popen(
                [STQ, "worker", self.url, *self.args],
                env=scrubbed_env(self.env),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def wait(self, timeout: float = TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


class Api:
    """The few API reads the tests make, straight over HTTP."""

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + path, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def workflow(self, wf_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/workflows/{wf_id}")

    def task(self, wf_id: str, name: str) -> dict[str, Any]:
        task = next(t for t in self.workflow(wf_id)["tasks"] if t["name"] == name)
        return self.get(f"/api/v1/tasks/{task['id']}")

    def wait_state(self, wf_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(
            lambda: (wf := self.workflow(wf_id))["state"] == state and wf,
            timeout=timeout,
            interval=0.05,
            what=f"workflow {wf_id} {state}",
        )

    def wait_task(self, wf_id: str, name: str, state: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (t := self.task(wf_id, name))["state"] == state and t,
            timeout=timeout,
            interval=0.05,
            what=f"task {name} {state}",
        )


def submit(url: str, path: Path, cwd: Path | None = None) -> str:
    result = stq("submit", str(path), "--server", url, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
