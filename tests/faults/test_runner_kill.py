"""kill -9 a runner at random points of an attempt, many times: nothing is lost or faked."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.acceptance.support import submit
from tests.faults.support import FULL, Auditor, marked_workflow, runs_per_task
from tests.helpers import wait_until

KILLS = 60 if FULL else 10
TASKS = 30 if FULL else 8


@pytest.mark.slow
def test_runner_killed_at_random_points(
    tmp_path: Path, server_factory, runner_factory, marks: Path
) -> None:
    server = server_factory(heartbeat_timeout=1.5)
    audit = Auditor(server.url)
    flow = marked_workflow(tmp_path / "wf.yaml", "killed", TASKS, 0.3, attempts=KILLS + 1)
    wf_id = submit(server.url, flow)
    rng = random.Random(7)
    for i in range(KILLS):
        before = _attempts(audit)
        runner = runner_factory(server.url)
        # a random point after its claim: while the command runs, around its report, or
        # already in its next claim
        wait_until(lambda n=before: _attempts(audit) > n, timeout=15, interval=0.01, what="claim")
        time.sleep(rng.uniform(0.0, 0.5))  # deliberate: where in the attempt the kill lands
        # half the time the command survives its runner (kill -9 of the runner alone)
        target = runner.process.pid
        if i % 2:
            os.kill(target, signal.SIGKILL)
        else:
            os.killpg(target, signal.SIGKILL)
        runner.wait(10)
    for _ in range(3):
        runner_factory(server.url, "--exit-when-idle", "4")
    audit.wait_terminal(timeout=60)
    found = audit.check_invariants(marks)
    assert found.get("completed") == TASKS, found
    print(f"runner kills: {KILLS}, {found}")
    assert audit.get(f"/api/v1/workflows/{wf_id}")["state"] == "completed"
    assert set(runs_per_task(marks)) == {f"killed-t{i}" for i in range(TASKS)}


def _attempts(audit: Auditor) -> int:
    return sum(audit.metrics()[1].values())
