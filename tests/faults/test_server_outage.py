"""The server is gone for longer than the heartbeat timeout while runners work.

The runners' attempts are presumed lost by then, but their commands keep running
and their results wait in the runners until the server is back: a completed
result completes its task even though the server had presumed the attempt lost,
unless that presumption used the task's last attempt (then the task had failed,
and a terminal task only changes through retry).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.support import submit
from tests.faults.support import Auditor, marked_workflow, runs_per_task
from tests.helpers import wait_until

#: The server's heartbeat timeout. Runners beat every sixth of it; at 1.5 s, one
#: heartbeat late by that much while 4 runners start on a loaded 2-core machine got
#: an attempt presumed lost before the outage began (a clean-clone CI run,
#: 2026-12-01), and the marks this test waits for never all came.
TIMEOUT = 3.0
#: How long each command runs: well past TIMEOUT, so the outage outlasts it.
COMMAND_SECONDS = 5.0
TASKS = 4


@pytest.mark.slow
@pytest.mark.parametrize(("attempts", "state"), [(2, "completed"), (1, "failed")])
def test_outage_longer_than_heartbeat_timeout(
    tmp_path: Path, server_factory, runner_factory, marks: Path, attempts: int, state: str
) -> None:
    server = server_factory(heartbeat_timeout=TIMEOUT)
    server.fixed_port = server.port
    audit = Auditor(server.url)
    submit(
        server.url, marked_workflow(tmp_path / "wf.yaml", "out", TASKS, COMMAND_SECONDS, attempts)
    )
    runners = [runner_factory(server.url) for _ in range(TASKS)]
    wait_until(lambda: audit.metrics()[1]["running"] == TASKS, timeout=15, what="all claimed")
    server.kill()
    # The commands run on without the server and end after the heartbeat timeout has passed.
    wait_until(lambda: sum(runs_per_task(marks).values()) == TASKS, timeout=15, what="commands")
    server.start()
    audit.wait_terminal(timeout=30)
    # every late result delivered: a late success marks its attempt completed either way
    wait_until(lambda: audit.metrics()[1]["completed"] >= TASKS, timeout=30, what="results")
    found = audit.check_invariants(marks)
    assert found[state] == TASKS, found
    if state == "failed":  # the presumed loss was final: no second attempt was made
        assert found["attempts"] == TASKS, found
    assert all(r.process.poll() is None for r in runners), "a runner gave up on the server"
    assert all("retrying" in r.log for r in runners), [r.log for r in runners]
