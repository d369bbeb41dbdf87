"""``stq runners``, and why a task waits as ``stq status`` and ``stq logs`` tell it."""

from __future__ import annotations

import json
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import requests

from tests.acceptance.support import Api, assert_one_line_error, stq, submit, write
from tests.helpers import http_server, wait_until

WAITS_WF = """\
name: waits
tasks:
  flaky: {command: 'echo boom; exit 1', max_attempts: 2, retry_delay: 1h, priority: 10}
  gpu_job: {command: 'true', labels: [gpu]}
  after_gpu: {command: 'true', depends_on: [gpu_job]}
  free: {command: 'true'}
"""

BUSY_WF = """\
name: busy
tasks:
  slow: {command: 'touch started; exec sleep 60', labels: [gpu]}
"""


def test_runners_lists_idle_and_busy_runners(tmp_path: Path, start_server, start_runner) -> None:
    server = start_server()
    env = {"STQ_SERVER": server.url}
    none = stq("runners", env=env)
    assert none.returncode == 0, none.stderr
    assert none.stdout == "no runners seen in the last 10 minutes: start one with stq worker URL\n"
    assert json.loads(stq("runners", "--json", env=env).stdout) == {"runners": []}

    wf_id = submit(server.url, write(tmp_path / "w.yaml", BUSY_WF))
    start_runner(server.url, "--name", "busy-one", "--labels", "gpu")
    start_runner(server.url, "--name", "idle-one", "--labels", "cpu,big")
    wait_until(lambda: (tmp_path / "started").exists(), what="slow started")
    slow_id = Api(server.url).task(wf_id, "slow")["id"]
    wait_until(
        lambda: _states(server.url) == {"busy-one": "busy", "idle-one": "idle"},
        what="both runners listed",
    )

    shown = stq("runners", env=env)
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split() == ["NAME", "LABELS", "STATE", "TASK", "LAST", "SEEN"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["busy-one"][1:4] == ["gpu", "busy", slow_id]
    assert by_name["idle-one"][1:4] == ["big,cpu", "idle", "-"]  # the server sorts labels
    assert all(row[4].endswith("s") and row[-1] == "ago" for row in by_name.values())

    printed = json.loads(stq("runners", "--json", env=env).stdout)
    answer = Api(server.url).get("/api/v1/runners")
    assert _without_last_seen(printed) == _without_last_seen(answer)
    assert all(r["last_seen"].endswith("Z") for r in printed["runners"])


def _states(url: str) -> dict[str, str]:
    return {r["name"]: r["state"] for r in Api(url).get("/api/v1/runners")["runners"]}


def _without_last_seen(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The listing without what moves between two reads (a busy runner's heartbeats)."""
    runners = [{k: v for k, v in r.items() if k != "last_seen"} for r in answer["runners"]]
    return sorted(runners, key=lambda r: r["name"])


class OlderServer(BaseHTTPRequestHandler):
    """An STQ server from before the runners list: healthy, and 404 on /api/v1/runners."""

    def do_GET(self) -> None:
        healthy = self.path == "/api/v1/health"
        body = {"ok": True} if healthy else {"error": {"code": "not_found", "message": "No"}}
        data = json.dumps(body).encode()
        self.send_response(200 if healthy else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_runners_on_an_older_server_is_a_usage_error() -> None:
    with http_server(OlderServer) as url:
        result = stq("runners", "--server", url)
    assert_one_line_error(result, 2)
    assert result.stderr == (
        f"stq: {url} does not list runners: its STQ server is older than this stq\n"
    )


def test_status_and_logs_say_why_each_task_waits(tmp_path: Path, start_server) -> None:
    server = start_server()
    env = {"STQ_SERVER": server.url}
    wf_id = submit(server.url, write(tmp_path / "w.yaml", WAITS_WF))
    _fail_once(server.url)  # a runner with no labels takes `flaky` (highest priority)
    api = Api(server.url)
    tasks = {t["name"]: t for t in api.workflow(wf_id)["tasks"]}
    until = tasks["flaky"]["waiting_for"]["until"]
    local = datetime.fromisoformat(until).astimezone().strftime("%H:%M:%S")

    status = stq("status", wf_id, env=env)
    assert status.returncode == 0, status.stderr
    why = _why_table(status.stdout)
    assert why == {
        "flaky": f"retry delay until {local}",
        "gpu_job": "waits for a runner with labels gpu (none seen in the last 10 minutes)",
        "after_gpu": "waits for gpu_job",
        "free": "waits for a free runner",
    }

    for name in ("gpu_job", "after_gpu", "free"):
        logs = stq("logs", tasks[name]["id"], env=env)
        assert_one_line_error(logs, 1)
        assert logs.stderr == f"stq: task {tasks[name]['id']} has no attempts yet: {why[name]}\n"
    flaky = stq("logs", tasks["flaky"]["id"], env=env)  # waiting, but it has an attempt
    assert flaky.returncode == 0 and flaky.stdout == "boom\n"


def _fail_once(url: str) -> None:
    """Claim one attempt as runner ``r1`` and report it failed, straight over the API."""
    claim = {"runner": "r1", "labels": [], "wait": 0}
    claimed = requests.post(f"{url}/api/v1/attempts/claim", json=claim, timeout=10)
    assert claimed.status_code == 200 and claimed.json()["task_name"] == "flaky"
    result = {"status": "failed", "exit_code": 1, "output": "boom\n", "message": "exit code 1"}
    attempt = claimed.json()["attempt_id"]
    reported = requests.post(f"{url}/api/v1/attempts/{attempt}/result", json=result, timeout=10)
    assert reported.status_code == 200 and reported.json()["task_state"] == "todo"


def _why_table(stdout: str) -> dict[str, str]:
    """The second table of ``stq status ID``: each waiting task's name and why it waits."""
    _, second = stdout.split("\n\n")
    header, *rows = second.splitlines()
    assert header.split() == ["WAITING", "TASK", "WHY"]
    return dict(row.split(None, 1) for row in rows)
