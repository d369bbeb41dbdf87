"""Two gunicorn servers on one PostgreSQL database, runners split between them.

The acceptance run for several servers: 5,000 trivial tasks, 8 ``stq worker URL1 URL2``
runners (half list server 1 first, half server 2), each task completed exactly
once, no 5xx in either server's access log; server 1 is killed with SIGKILL
mid-run, its runners fail over to server 2 and the run completes. A claim
whose answer died with server 1 is recovered by the heartbeat timeout (short
here), so it runs again as attempt 2, never twice to completion.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from stq.model import TaskSpec, WorkflowSpec, WorkflowState
from stq.store import open_store
from stq.store.sql import SqlStore
from tests.helpers import BIN, LiveServer, scrubbed_env, wait_until

TASKS = 5000
RUNNERS = 8
HEARTBEAT_TIMEOUT = "4"
SERVER_ERROR = re.compile(r'" 5\d\d ')


@pytest.fixture
def servers(tmp_path: Path, pg_url: str) -> Iterator[list[LiveServer]]:
    env = {"STQ_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT}
    args = ["--access-logfile", "-"]
    started: list[LiveServer] = []
    try:
        for n in (1, 2):
            server = LiveServer(
                db=tmp_path / f"server{n}.db", db_url=pg_url, workers=2, env=env, extra_args=args
            )
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()


def _runner(n: int, urls: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(BIN / "stq"), "worker", *urls, "--name", f"r{n}", "--exit-when-idle", "3"],
            env=scrubbed_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _completed(store: SqlStore, wid: str) -> int:
    return store.get_workflow(wid).counts["completed"]


@pytest.mark.slow
def test_two_servers_one_queue_survive_a_killed_server(
    servers: list[LiveServer], pg_url: str, tmp_path: Path
) -> None:
    store = open_store(pg_url)
    # attempts to spare: a claim whose answer died with server 1 is lost, then run again
    tasks = tuple(TaskSpec(f"t{i}", "true", max_attempts=3) for i in range(TASKS))
    wid = store.submit_workflow(WorkflowSpec("fan-out", tasks)).id
    one, two = (s.url for s in servers)
    runners = [
        _runner(n, [one, two] if n % 2 else [two, one], tmp_path / f"runner{n}.log")
        for n in range(RUNNERS)
    ]
    try:
        wait_until(lambda: _completed(store, wid) >= TASKS // 3, timeout=60, what="a third done")
        servers[0].kill()
        wait_until(
            lambda: store.get_workflow(wid).state != WorkflowState.RUNNING,
            timeout=90,
            what="the run to complete on the surviving server",
        )
        codes = [proc.wait(30) for proc in runners]
    finally:
        for proc in runners:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert codes == [0] * RUNNERS
    done = store.get_workflow(wid)
    assert done.state == WorkflowState.COMPLETED and done.counts["completed"] == TASKS
    attempts = store.metrics().attempts
    assert attempts["completed"] == TASKS  # every task completed exactly once
    assert attempts["running"] == 0
    for server in servers:
        assert not SERVER_ERROR.search(server.log_text()), server.log_text()[-2000:]
    store.close()


def test_long_poll_on_one_server_wakes_on_a_submit_to_the_other(
    servers: list[LiveServer],
) -> None:
    """LISTEN/NOTIFY across servers: a waiting runner hears of work within ~50 ms."""
    one, two = (s.url for s in servers)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            requests.post, f"{two}/api/v1/attempts/claim", json={"runner": "r", "wait": 10},
            timeout=20,
        )  # fmt: skip
        time.sleep(0.3)  # let the long poll start: nothing to wake it yet
        assert not waiting.done()
        doc = {"name": "late", "tasks": {"a": {"command": "true"}}}
        assert requests.post(f"{one}/api/v1/workflows", json=doc, timeout=10).status_code == 201
        submitted = time.monotonic()
        answer = waiting.result(timeout=15)
        woke_after = time.monotonic() - submitted
    assert answer.status_code == 200 and answer.json()["task_name"] == "a"
    assert woke_after < 0.5, woke_after  # polled every 20 ms; generous for a loaded CI box
