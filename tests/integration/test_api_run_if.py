"""``run_if``, descriptions, matrices and params as a real server answers them (docs/api.md).

A real ``gunicorn stq.api:app`` on a SQLite file; workflows go in as the JSON
documents ``POST /api/v1/workflows`` takes and come back as its JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import LiveServer

TIMEOUT = 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    live = LiveServer(db=tmp_path / "stq.db", workers=2).start()
    try:
        yield live.url
    finally:
        live.stop()


def submit(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{url}/api/v1/workflows", json=doc, timeout=TIMEOUT)
    assert answer.status_code == 201, answer.text
    return answer.json()


def get(url: str, path: str) -> dict[str, Any]:
    answer = requests.get(f"{url}{path}", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def run_next(url: str, status: str = "completed") -> str:
    """Claim the next attempt and report ``status`` for it; its task's name."""
    claim = requests.post(
        f"{url}/api/v1/attempts/claim", json={"runner": "r1", "labels": []}, timeout=TIMEOUT
    )
    assert claim.status_code == 200, claim.text
    body = claim.json()
    result = {"status": status, "exit_code": 0 if status == "completed" else 1}
    answer = requests.post(
        f"{url}/api/v1/attempts/{body['attempt_id']}/result", json=result, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    return body["task_name"]


def tasks_by_name(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["name"]: task for task in workflow["tasks"]}


CI = {
    "name": "ci",
    "params": {"BRANCH": "main", "DAY": "2026-12-06"},
    "tasks": {
        "test": {
            "description": "Unit tests on every Python",
            "command": "true",
            "matrix": {"PY": ["311", 312], "OS": ["linux"]},
        },
        "package": {"command": "true", "depends_on": ["test"]},
        "notify-failure": {
            "command": "true",
            "depends_on": ["package"],
            "run_if": "on_failure",
        },
        "cleanup": {
            "command": "true",
            "depends_on": ["package", "notify-failure"],
            "run_if": "always",
        },
    },
}


def test_tasks_and_workflows_carry_description_run_if_matrix_and_params(server: str) -> None:
    wid = submit(server, CI)["id"]
    workflow = get(server, f"/api/v1/workflows/{wid}")
    assert workflow["params"] == {"BRANCH": "main", "DAY": "2026-12-06"}
    tasks = tasks_by_name(workflow)
    expanded = ["test-311-linux", "test-312-linux"]
    assert list(tasks) == [*expanded, "package", "notify-failure", "cleanup"]
    first = tasks["test-311-linux"]
    assert first["description"] == "Unit tests on every Python"
    assert first["matrix"] == {"PY": "311", "OS": "linux"} and first["matrix_of"] == "test"
    assert tasks["test-312-linux"]["matrix"] == {"PY": "312", "OS": "linux"}
    assert first["run_if"] == "on_success"
    assert tasks["notify-failure"]["run_if"] == "on_failure"
    assert tasks["cleanup"]["run_if"] == "always"
    package = tasks["package"]
    assert package["description"] is None
    assert package["matrix"] is None and package["matrix_of"] is None
    assert package["depends_on"] == expanded
    # the same fields in the task list, one task, and the workflow list
    listed = get(server, f"/api/v1/tasks?workflow={wid}")["tasks"]
    assert [t["matrix_of"] for t in listed] == ["test", "test", None, None, None]
    one = get(server, f"/api/v1/tasks/{first['id']}")
    assert {k: one[k] for k in ("description", "run_if", "matrix", "matrix_of")} == {
        "description": "Unit tests on every Python",
        "run_if": "on_success",
        "matrix": {"PY": "311", "OS": "linux"},
        "matrix_of": "test",
    }
    (summary,) = get(server, "/api/v1/workflows")["workflows"]
    assert summary["params"] == workflow["params"]


def test_a_workflow_without_params_has_an_empty_object(server: str) -> None:
    wid = submit(server, {"name": "plain", "tasks": {"a": {"command": "true"}}})["id"]
    workflow = get(server, f"/api/v1/workflows/{wid}")
    assert workflow["params"] == {}
    (task,) = workflow["tasks"]
    assert (task["run_if"], task["matrix"], task["matrix_of"]) == ("on_success", None, None)


def test_a_skipped_on_failure_task_is_completed_with_reason_skipped(server: str) -> None:
    wid = submit(server, CI)["id"]
    assert sorted([run_next(server), run_next(server)]) == ["test-311-linux", "test-312-linux"]
    assert run_next(server) == "package"
    tasks = tasks_by_name(get(server, f"/api/v1/workflows/{wid}"))
    skipped = get(server, f"/api/v1/tasks/{tasks['notify-failure']['id']}")
    assert (skipped["state"], skipped["reason"]) == ("completed", "skipped")
    assert skipped["attempts"] == [] and skipped["attempts_used"] == 0
    assert skipped["finished"] is not None and skipped["waiting_for"] is None
    assert tasks["cleanup"]["waiting_for"] == {"kind": "runner"}
    assert run_next(server) == "cleanup"
    done = get(server, f"/api/v1/workflows/{wid}")
    assert done["state"] == "completed"
    assert done["counts"] == {"todo": 0, "in_process": 0, "completed": 5, "failed": 0}


def test_after_a_failure_the_notifier_and_cleanup_run(server: str) -> None:
    wid = submit(server, CI)["id"]
    assert run_next(server, "failed") == "test-311-linux"
    tasks = tasks_by_name(get(server, f"/api/v1/workflows/{wid}"))
    assert (tasks["package"]["state"], tasks["package"]["reason"]) == ("failed", "upstream_failed")
    assert tasks["notify-failure"]["waiting_for"] == {"kind": "runner"}
    assert tasks["cleanup"]["waiting_for"] == {
        "kind": "dependencies",
        "tasks": ["notify-failure"],
        "more": 0,
    }
    assert [run_next(server) for _ in range(3)] == [
        "test-312-linux",
        "notify-failure",
        "cleanup",
    ]
    done = get(server, f"/api/v1/workflows/{wid}")
    assert done["state"] == "failed"
    assert done["counts"] == {"todo": 0, "in_process": 0, "completed": 3, "failed": 2}
