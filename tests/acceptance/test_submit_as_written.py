"""``stq submit`` sends the workflow as its file writes it: defaults and matrices are the
server's to expand, so the body stays as small as the file."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import yaml

from stq.settings import MAX_BODY_BYTES
from tests.acceptance.support import stq, write
from tests.helpers import LiveServer, http_server

WRITTEN = """\
name: written
description: as the file says
params: {STAGE: dev, DAY: "2026-12-06"}
defaults:
  duration: 10m
  max_attempts: 2
  env: {CACHE: /tmp/cache}
tasks:
  test:
    description: Unit tests on every Python
    command: tox -e "py$PY"
    matrix: {PY: ["311", "312"]}
  package:
    command: [make, dist]
    depends_on: [test]
  notify:
    command: ./notify.sh
    depends_on: [package]
    run_if: on_failure
"""


class Recorder(BaseHTTPRequestHandler):
    """Keeps each submitted body and answers as a server that stored it."""

    BODIES: list[bytes] = []
    LOCK = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.LOCK:
            self.BODIES.append(body)
        data = json.dumps({"id": "w1", "name": "written", "state": "running", "tasks": []})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_the_body_is_the_document_as_written_with_params_replaced(tmp_path: Path) -> None:
    wf = write(tmp_path / "w.yaml", WRITTEN)
    Recorder.BODIES = []
    with http_server(Recorder) as url:
        result = stq("submit", str(wf), "--param", "STAGE=prod", "--server", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w1\n"
    (body,) = Recorder.BODIES
    expected = yaml.safe_load(WRITTEN)
    expected["params"]["STAGE"] = "prod"
    assert json.loads(body) == expected
    sent = json.loads(body)["tasks"]
    assert set(sent) == {"test", "package", "notify"}  # the matrix is not expanded
    assert "env" not in sent["package"] and "duration" not in sent["package"]


@pytest.mark.slow
def test_big_defaults_over_many_tasks_stay_under_the_body_limit(
    tmp_path: Path, live_server: LiveServer
) -> None:
    tasks = 20_000
    value = "x" * 1000
    lines = ["name: wide", "defaults:", f"  env: {{BIG: {value}}}", "tasks:"]
    lines += [f"  t{i}: {{command: 'true'}}" for i in range(tasks)]
    wf = tmp_path / "wide.yaml"
    wf.write_text("\n".join(lines) + "\n")
    assert wf.stat().st_size < MAX_BODY_BYTES // 20
    assert tasks * len(value) > MAX_BODY_BYTES  # the defaults copied into every task: too big

    result = stq("submit", str(wf), "--server", live_server.url, timeout=120)
    assert result.returncode == 0, result.stderr
    wf_id = result.stdout.strip()
    summary = requests.get(
        f"{live_server.url}/api/v1/workflows/{wf_id}", params={"tasks": "false"}, timeout=30
    ).json()
    assert sum(summary["counts"].values()) == tasks
    claim = {"runner": "probe", "labels": [], "wait": 0}
    claimed = requests.post(f"{live_server.url}/api/v1/attempts/claim", json=claim, timeout=30)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["env"]["BIG"] == value  # the server applied the defaults
