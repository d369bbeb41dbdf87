"""16 runner processes against ``gunicorn -w 4`` on SQLite: nothing lost, nothing twice.

This is also the SQLite-busy case of the fault suite: four server processes and
sixteen runners all write one file. CI size: 2,000 tasks in 5 workflows;
``STQ_FULL_LOAD=1`` runs the full 10,000. The throughput is printed (``-s``).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import Runner
from tests.faults.support import Auditor
from tests.helpers import LiveServer

FULL = os.environ.get("STQ_FULL_LOAD") == "1"
TASKS = 10_000 if FULL else 2_000
WORKFLOWS = 5
RUNNERS = 16


def _flow(index: int, size: int) -> dict:
    command = 'echo "$STQ_TASK_ID" >> ran.txt'
    return {"name": f"load-{index}", "tasks": {f"t{i}": {"command": command} for i in range(size)}}


@pytest.mark.slow
def test_sixteen_runners_four_server_processes(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = LiveServer(
        db=tmp_path / "stq.db",
        workers=4,
        extra_args=["--access-logfile", str(access), "--access-logformat", "%(s)s %(r)s"],
    ).start()
    runners: list[Runner] = []
    try:
        start = time.monotonic()
        for index in range(WORKFLOWS):
            resp = requests.post(
                f"{server.url}/api/v1/workflows", json=_flow(index, TASKS // WORKFLOWS), timeout=60
            )
            assert resp.status_code == 201, resp.text
        runners = [
            Runner(url=server.url, cwd=tmp_path, args=["--exit-when-idle", "2"]).start()
            for _ in range(RUNNERS)
        ]
        for runner in runners:
            assert runner.wait(timeout=600) == 0, runner.log
        elapsed = time.monotonic() - start
        audit = Auditor(server.url)
        _check(audit, tmp_path / "ran.txt", access)
        print(
            f"load: {TASKS} tasks, {RUNNERS} runners, -w 4: {elapsed:.1f} s, "
            f"{TASKS / elapsed:.0f} tasks/s (submit to last runner idle-exit, incl. 2 s idle)"
        )
    finally:
        for runner in runners:
            runner.stop()
        server.stop()


def _check(audit: Auditor, ran: Path, access: Path) -> None:
    tasks = audit.tasks()
    assert len(tasks) == TASKS
    assert Counter(t["state"] for t in tasks) == {"completed": TASKS}
    assert all(t["attempts_used"] == 1 for t in tasks), "a task ran more than once"
    runs = Counter(ran.read_text().split())
    assert len(runs) == TASKS and set(runs.values()) == {1}, runs.most_common(3)
    tasks_metric, attempts_metric = audit.metrics()
    assert tasks_metric == {"completed": TASKS}
    assert attempts_metric == {"completed": TASKS}
    statuses = Counter(re.findall(r"^(\d{3}) ", access.read_text(), re.M))
    assert not [s for s in statuses if s.startswith("5")], statuses
    assert statuses["200"] >= TASKS, statuses
