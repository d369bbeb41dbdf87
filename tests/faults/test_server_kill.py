"""kill -9 the server (master and workers, or workers only) mid-claim and mid-report; restart.

Every change is one transaction on the SQLite file, so a restarted server on the
same file must see a consistent queue: runners back off, reconnect and finish.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import submit
from tests.faults.support import FULL, Auditor, marked_workflow
from tests.helpers import LiveServer, wait_until

ROUNDS = 20 if FULL else 4
#: Tasks submitted per round: there is always work to be interrupted.
TASKS = 20


def _children(pid: int) -> list[int]:
    """The gunicorn workers of master ``pid`` (read from /proc: no extra dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _completed(audit: Auditor) -> int:
    return audit.metrics()[0]["completed"]


@pytest.mark.slow
def test_server_killed_during_claims_and_reports(
    tmp_path: Path, server_factory, runner_factory, marks: Path
) -> None:
    server = server_factory(heartbeat_timeout=2, workers=2)
    server.fixed_port = server.port
    audit = Auditor(server.url)
    runners = [runner_factory(server.url) for _ in range(4)]
    rng = random.Random(11)
    for round_ in range(ROUNDS):
        flow = marked_workflow(tmp_path / f"wf{round_}.yaml", f"srv{round_}", TASKS, 0.05)
        submit(server.url, flow)
        done = _completed(audit)
        try:
            wait_until(lambda n=done: _completed(audit) > n, timeout=20, what="progress")
        except AssertionError as ex:
            logs = "\n".join(r.log[-1500:] for r in runners)
            raise AssertionError(f"round {round_}: {audit.metrics()}\n{logs}") from ex
        time.sleep(rng.uniform(0.0, 0.2))  # deliberate: a random point among claims/reports
        if round_ % 2 == 0:
            server.kill()  # master and workers at once
            server.start()
        else:
            workers = _children(server.process.pid)
            assert workers, "gunicorn has no workers to kill"
            for pid in workers:
                os.kill(pid, signal.SIGKILL)  # the master forks new ones
            wait_until(lambda: _health(server), timeout=20, what="respawned workers")
    for _ in range(2):
        runner_factory(server.url, "--exit-when-idle", "3")
    audit.wait_terminal(timeout=90)
    found = audit.check_invariants(marks)
    assert found.get("completed") == TASKS * ROUNDS, found
    print(f"server kills: {ROUNDS}, {found}")


def _health(server: LiveServer) -> bool:
    try:
        return requests.get(f"{server.url}/api/v1/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False
