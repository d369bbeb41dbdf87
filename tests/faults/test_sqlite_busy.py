"""SQLite busy: 4 gunicorn processes x 8 threads and 16 runner processes on one file.

Readers poll the lists and /metrics the whole time, so writes (claims, reports,
heartbeats) meet both the write lock and WAL readers. Nothing may answer 5xx,
and the invariants hold afterwards.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import Runner, submit
from tests.faults.support import FULL, Auditor, marked_workflow
from tests.helpers import LiveServer

TASKS = 1000 if FULL else 240
RUNNERS = 16


def _poll(url: str, stop: threading.Event, seen: Counter[int]) -> None:
    """A dashboard-like reader: lists and metrics, as fast as the server answers."""
    with requests.Session() as session:
        while not stop.is_set():
            for path in ("/api/v1/workflows", "/api/v1/tasks?state=in_process", "/metrics"):
                seen[session.get(url + path, timeout=30).status_code] += 1


@pytest.mark.slow
def test_sixteen_runners_four_processes_and_readers(tmp_path: Path, marks: Path) -> None:
    access = tmp_path / "access.log"
    server = LiveServer(
        db=tmp_path / "stq.db",
        workers=4,
        env={"STQ_HEARTBEAT_TIMEOUT": "3"},  # heartbeats every 0.5 s: more writes
        extra_args=["--access-logfile", str(access), "--access-logformat", "%(s)s %(r)s"],
    ).start()
    stop, seen = threading.Event(), Counter()
    readers = [threading.Thread(target=_poll, args=(server.url, stop, seen)) for _ in range(2)]
    runners: list[Runner] = []
    try:
        submit(server.url, marked_workflow(tmp_path / "wf.yaml", "busy", TASKS, 0.01))
        for reader in readers:
            reader.start()
        runners = [
            Runner(server.url, tmp_path, ["--exit-when-idle", "1.5"]).start()
            for _ in range(RUNNERS)
        ]
        for runner in runners:
            assert runner.wait(180) == 0, runner.log
        stop.set()
        for reader in readers:
            reader.join(30)
        audit = Auditor(server.url)
        found = audit.check_invariants(marks)
        assert found == {"tasks": TASKS, "completed": TASKS, "attempts": TASKS}, found
    finally:
        stop.set()
        for runner in runners:
            runner.stop()
        server.stop()
    statuses = Counter(re.findall(r"^(\d{3}) ", access.read_text(), re.M))
    assert not [s for s in statuses if s[0] == "5"], statuses
    assert set(seen) == {200} and sum(seen.values()) > 10, seen
    assert "Traceback" not in server.log_text()
