"""Dead-runner recovery: SIGKILL a runner mid-task; time until another runner starts it.

The killed runner's process group goes with it (as when its machine dies), so
only the server's heartbeat timeout can notice. The time is from the kill to
the start of attempt 2 as the server recorded it.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path

import requests

from bench import procs

DOC = {"name": "recovery", "tasks": {"slow": {"command": "sleep 600", "max_attempts": 2}}}


def _attempts(url: str, wid: str) -> list[dict]:
    tasks = requests.get(f"{url}/api/v1/tasks", params={"workflow": wid}, timeout=10).json()
    task = requests.get(f"{url}/api/v1/tasks/{tasks['tasks'][0]['id']}", timeout=10).json()
    return task["attempts"]


def measure(tmp: Path, heartbeat_timeout: float | None = None) -> float:
    """Seconds from SIGKILL to the task's next attempt starting on the other runner."""
    extra = {} if heartbeat_timeout is None else {"STQ_HEARTBEAT_TIMEOUT": str(heartbeat_timeout)}
    env = procs.clean_env(**extra)
    with procs.server(tmp / "recovery.db", env=env) as (url, _):
        with procs.runners(url, 1, tmp) as (first,):
            wid = requests.post(f"{url}/api/v1/workflows", json=DOC, timeout=10).json()["id"]
            procs.wait_for(lambda: len(_attempts(url, wid)) == 1, 30, "the first claim", 0.05)
            with procs.runners(url, 1, tmp):
                time.sleep(1.5)  # the second runner is up and idle in its long poll
                os.killpg(first.pid, signal.SIGKILL)
                killed = time.time()
                limit = (heartbeat_timeout or 60) * 2 + 30
                procs.wait_for(lambda: len(_attempts(url, wid)) == 2, limit, "the restart", 0.1)
                started = _attempts(url, wid)[1]["started"]
    return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() - killed
