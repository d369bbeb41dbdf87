"""What every fault test checks afterwards, and the workflows whose commands leave proof.

Each task's command appends its attempt id to ``marks/<task name>`` as its last
act before ``exit 0``, so a completed attempt without its mark is a task that
"completed" without running. After a fault the tests let fresh runners drain
the queue, then :func:`check_invariants` asserts the promises of
docs/guarantees.md against the API's own tables and ``/metrics``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.helpers import wait_until

TERMINAL = ("completed", "failed")
#: The size of the CI runs; ``STQ_FULL_FAULTS=1`` asks for the full ones.
FULL = os.environ.get("STQ_FULL_FAULTS") == "1"


def marked_workflow(path: Path, name: str, tasks: int, seconds: float, attempts: int = 5) -> Path:
    """A workflow of ``tasks`` independent tasks that each sleep and then leave their mark."""
    lines = [f"name: {name}", "defaults:", f"  max_attempts: {attempts}", "tasks:"]
    command = (
        f'sleep {seconds} && mkdir -p marks && echo "$STQ_ATTEMPT_ID" >> "marks/$STQ_TASK_NAME"'
    )
    for i in range(tasks):
        lines += [f"  {name}-t{i}:", f"    command: '{command}'"]
    path.write_text("\n".join(lines) + "\n")
    return path


class Auditor:
    """Reads the API (optionally with a token) and checks the invariants."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str) -> Any:
        resp = requests.get(self.url + path, headers=self.headers, timeout=30)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:500])
        return resp.text if path == "/metrics" else resp.json()

    def tasks(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/tasks")["tasks"]

    def all_terminal(self) -> bool:
        return all(t["state"] in TERMINAL for t in self.tasks())

    def settled(self) -> bool:
        """Every task terminal and no attempt running (a late one ends or is presumed lost)."""
        return self.all_terminal() and self.metrics()[1]["running"] == 0

    def wait_terminal(self, timeout: float) -> None:
        wait_until(self.settled, timeout=timeout, interval=0.2, what="every task terminal")

    def metrics(self) -> tuple[Counter[str], Counter[str]]:
        """``stq_tasks`` by state and ``stq_attempts`` by status, as /metrics says."""
        found: dict[str, Counter[str]] = {"stq_tasks": Counter(), "stq_attempts": Counter()}
        for name, key, value in re.findall(
            r'^(stq_\w+)\{\w+="(\w+)"\} (\d+)$', self.get("/metrics"), re.M
        ):
            if name in found:
                found[name][key] = int(value)
        return +found["stq_tasks"], +found["stq_attempts"]

    def check_invariants(self, marks: Path, detail: bool = True) -> dict[str, int]:
        """Every promise after a fault; returns counts for the test's own assertions."""
        tasks = self.tasks()
        states = Counter(t["state"] for t in tasks)
        attempts: Counter[str] = Counter()
        for task in tasks:
            assert task["state"] in TERMINAL or _claimable(task), task
            if detail:
                attempts += self._check_task(task, marks)
        metric_tasks, metric_attempts = self.metrics()
        assert metric_tasks == +states, (metric_tasks, states)
        if detail:
            assert metric_attempts == +attempts, (metric_attempts, attempts)
        return {"tasks": len(tasks), **states, "attempts": sum(metric_attempts.values())}

    def _check_task(self, task: dict[str, Any], marks: Path) -> Counter[str]:
        full = self.get(f"/api/v1/tasks/{task['id']}")
        ran = set(_lines(marks / task["name"]))
        statuses = Counter(a["status"] for a in full["attempts"])
        for attempt in full["attempts"]:
            if attempt["status"] == "completed":
                assert attempt["id"] in ran, f"{task['name']} completed but never ran: {attempt}"
            if task["state"] in TERMINAL:
                assert attempt["status"] != "running", f"left running: {attempt}"
        if task["state"] == "completed":
            assert statuses["completed"] >= 1, full
        return statuses


def _claimable(task: dict[str, Any]) -> bool:
    return task["state"] == "todo"


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def runs_per_task(marks: Path) -> Counter[str]:
    """How many attempts of each task ran to their end (left a mark)."""
    return Counter({p.name: len(_lines(p)) for p in marks.iterdir()} if marks.exists() else {})
