"""Two runners report the same task: a presumed-lost attempt that was alive all along.

Driven over HTTP like two runners would: runner A claims and goes silent, the
server presumes it lost, runner B claims the retry; then both report, in either
order, and A repeats its report as a runner does when an answer is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.faults.support import Auditor
from tests.helpers import wait_until

FLOW = {"name": "twice", "tasks": {"t": {"command": "true", "max_attempts": 3}}}


def _post(url: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url + path, json=body, timeout=10)


def _claim(url: str, runner: str) -> dict[str, Any]:
    resp = _post(url, "/api/v1/attempts/claim", {"runner": runner, "labels": [], "wait": 0})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _report(url: str, attempt: str, status: str) -> dict[str, Any]:
    body = {"status": status, "exit_code": 0 if status == "completed" else 1, "output": status}
    resp = _post(url, f"/api/v1/attempts/{attempt}/result", body)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [("completed", "completed"), ("completed", "failed"), ("failed", "completed")],
)
def test_presumed_lost_attempt_reports_late(
    tmp_path: Path, server_factory, first: str, second: str
) -> None:
    server = server_factory(heartbeat_timeout=0.6)
    audit = Auditor(server.url)
    assert _post(server.url, "/api/v1/workflows", FLOW).status_code == 201
    a = _claim(server.url, "runner-a")
    wait_until(
        lambda: audit.get(f"/api/v1/tasks/{a['task_id']}")["state"] == "todo",
        timeout=10,
        what="attempt A presumed lost",
    )
    b = _claim(server.url, "runner-b")
    assert (b["task_id"], b["attempt_number"]) == (a["task_id"], 2)
    answer_b = _report(server.url, b["attempt_id"], first)
    answer_a = _report(server.url, a["attempt_id"], second)
    assert _report(server.url, a["attempt_id"], second) == answer_a  # a repeat: same answer
    assert _report(server.url, b["attempt_id"], first) == answer_b
    task = audit.get(f"/api/v1/tasks/{a['task_id']}")
    if "completed" in (first, second):
        assert task["state"] == "completed", task
    assert [x["status"] for x in task["attempts"]][1] == first
    assert all(x["status"] != "running" for x in task["attempts"]), task
    assert audit.check_invariants(tmp_path, detail=False)["tasks"] == 1
    tasks, attempts = audit.metrics()
    assert sum(attempts.values()) == len(task["attempts"]) == 2, attempts
    assert tasks == {"completed": 1}, tasks
