"""``--json`` on status, runners, submit and logs: stdout is JSON a script can read whole."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from stq.worker.client import Client
from tests.acceptance.support import (
    Api,
    Runner,
    assert_one_line_error,
    stq,
    submit,
    write,
)
from tests.acceptance.test_logs_and_reports import following_the_retried_task
from tests.helpers import LiveServer, wait_until

pytestmark = pytest.mark.slow

OUTPUT_KEYS = {"attempt_id", "number", "status", "output", "output_start"}

TWO = """\
name: two
tasks:
  hello: {command: 'echo hello; echo world'}
  after: {command: 'true', depends_on: [hello]}
"""


def _two_completed(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> tuple[LiveServer, str, Api]:
    """A server on which TWO ran to completion: the server, the workflow id, an API reader."""
    server = start_server()
    wf_id = submit(server.url, write(tmp_path / "w.yaml", TWO))
    start_runner(server.url, "--exit-when-idle", "5")
    api = Api(server.url)
    api.wait_state(wf_id, "completed")
    return server, wf_id, api


def _json(result: subprocess.CompletedProcess[str]) -> object:
    """stdout as one JSON document, after checking the command succeeded quietly."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def _post(url: str, name: str) -> str:
    doc = {"name": name, "tasks": {"a": {"command": "true"}}}
    answer = requests.post(f"{url}/api/v1/workflows", json=doc, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_status_json_lists_every_workflow_on_every_page(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server()
    ids = [_post(server.url, f"wf{i}") for i in range(25)]
    env = {"STQ_SERVER": server.url}

    listed = _json(stq("status", "--json", env=env))
    assert isinstance(listed, dict) and list(listed) == ["workflows"]
    assert [w["id"] for w in listed["workflows"]] == ids[::-1]  # all 25, newest first
    assert {"id", "name", "state", "counts"} <= set(listed["workflows"][0])
    table = stq("status", env=env).stdout.splitlines()
    assert len(table) == 1 + 20  # the table keeps to its default of 20
    limited = _json(stq("status", "--json", "--limit", "3", env=env))
    assert [w["id"] for w in limited["workflows"]] == ids[:-4:-1]

    client = Client(server.url)
    try:  # what --json walks: pages that follow each other through ``before``
        assert [w["id"] for w in client.every_workflow(page=4)] == ids[::-1]
        assert [w["id"] for w in client.every_workflow(page=5)] == ids[::-1]  # last page full
    finally:
        client.close()


def test_status_of_one_workflow_is_what_the_api_answers(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server, wf_id, api = _two_completed(tmp_path, start_server, start_runner)

    printed = _json(stq("status", wf_id, "--json", "--server", server.url))
    assert printed == api.workflow(wf_id)
    assert [t["name"] for t in printed["tasks"]] == ["hello", "after"]

    unknown = stq("status", "w999999", "--json", "--server", server.url)
    assert_one_line_error(unknown, 1)
    assert unknown.stdout == ""


def test_submit_json_prints_the_answer_or_with_wait_the_final_workflow(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server = start_server()
    wf = write(tmp_path / "w.yaml", TWO)
    answer = _json(stq("submit", str(wf), "--json", "--server", server.url))
    assert isinstance(answer, dict)
    assert set(answer) >= {"id", "name", "state", "tasks"} and answer["name"] == "two"
    assert [t["name"] for t in answer["tasks"]] == ["hello", "after"]
    assert {"id", "name", "state"} <= set(answer["tasks"][0])

    start_runner(server.url)
    waited = stq("submit", str(wf), "--wait", "--json", "--server", server.url)
    final = _json(waited)  # one document: no id line, no progress, no summary table
    assert isinstance(final, dict) and final["state"] == "completed"
    assert final["id"] != answer["id"]
    assert final == Api(server.url).workflow(final["id"])

    failing = write(tmp_path / "f.yaml", "name: f\ntasks:\n  bad: {command: 'exit 3'}\n")
    failed = stq("submit", str(failing), "--wait", "--json", "--server", server.url)
    assert failed.returncode == 1, failed.stderr  # as without --json
    ended = json.loads(failed.stdout)
    assert ended["state"] == "failed" and ended["tasks"][0]["state"] == "failed"


def test_runners_json_is_what_the_api_answers(
    start_server: Callable[..., LiveServer], start_runner: Callable[..., Runner]
) -> None:
    server = start_server()
    start_runner(server.url, "--name", "one", "--labels", "gpu")
    api = Api(server.url)

    def listed() -> list[dict]:
        return api.get("/api/v1/runners")["runners"]

    wait_until(listed, what="the runner listed")
    printed = _json(stq("runners", "--json", "--server", server.url))
    assert isinstance(printed, dict) and list(printed) == ["runners"]
    (runner,) = printed["runners"]
    assert runner["name"] == "one" and runner["labels"] == ["gpu"]
    assert set(runner) == {"name", "labels", "state", "attempt_id", "task_id", "last_seen"}


def test_logs_json_prints_the_attempt_and_its_output(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server, wf_id, api = _two_completed(tmp_path, start_server, start_runner)
    task = api.task(wf_id, "hello")
    (attempt,) = task["attempts"]

    printed = _json(stq("logs", task["id"], "--json", "--server", server.url))
    assert printed == {
        "attempt_id": attempt["id"],
        "number": 1,
        "status": "completed",
        "output": "hello\nworld\n",
        "output_start": 0,
    }
    followed = stq("logs", task["id"], "-f", "--json", "--server", server.url)
    assert followed.returncode == 0, followed.stderr
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert lines and all(set(line) == OUTPUT_KEYS for line in lines)
    assert "".join(line["output"] for line in lines) == "hello\nworld\n"
    assert lines[-1]["status"] == "completed"

    missing = stq("logs", task["id"], "--attempt", "2", "--json", "--server", server.url)
    assert_one_line_error(missing, 1)
    assert missing.stdout == ""


def test_logs_follow_json_is_one_object_per_part_through_a_retry(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    with following_the_retried_task(tmp_path, start_server, "--json") as (server, follow):
        start_runner(server.url)
        out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(set(line) == OUTPUT_KEYS for line in lines)
    by_number: dict[int, list[dict]] = {}
    for line in lines:
        by_number.setdefault(line["number"], []).append(line)
    assert sorted(by_number) == [1, 2]
    for number, parts in by_number.items():
        assert "".join(p["output"] for p in parts) == f"try {number}\ndone {number}\n"
        offsets = [p["output_start"] for p in parts]
        sizes = [len(p["output"].encode()) for p in parts]
        assert offsets == [sum(sizes[:i]) for i in range(len(parts))]  # each part follows on
        assert all(p["status"] == "running" for p in parts[:-1])
    assert by_number[1][-1]["status"] == "failed"
    assert by_number[2][-1]["status"] == "completed"
    assert len(by_number[1]) > 1  # "try 1" came out while the command still ran
