"""``stq submit`` through a proxy that loses answers: one workflow, exit 0.

The proxy (tests/fault_proxy.py) forwards to a real ``stq server`` but throws
away the answer to the first submit (the server stores the workflow; the
command hears nothing and gives up waiting after ``--answer-timeout``), and,
with ``--wait``, drops the first connection its progress reads open. The
command must send the submit again with the same Idempotency-Key, get the
same workflow back, follow it to the end, and never call the server
unreachable.
"""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.support import Api, stq, write
from tests.fault_proxy import FaultProxy

WORKFLOW = """\
name: once
tasks:
  a: {command: 'sleep 4'}  # outlasts the connection that breaks under --wait
  b: {command: 'true', depends_on: [a]}
"""


def test_a_lost_submit_answer_makes_one_workflow(tmp_path: Path, start_server) -> None:
    server = start_server()
    path = write(tmp_path / "once.yaml", WORKFLOW)
    with FaultProxy(server.port, plan=["swallow"]) as proxy:
        result = stq("submit", str(path), "--answer-timeout", "1", env={"STQ_SERVER": proxy.url})
        tries = proxy.accepted
    assert result.returncode == 0, result.stderr
    assert tries == 2  # the lost one, and its repeat
    assert "trying again" in result.stderr and "cannot reach" not in result.stderr
    (only,) = Api(server.url).get("/api/v1/workflows")["workflows"]
    assert result.stdout.strip() == only["id"]


def test_submit_wait_rides_out_a_lost_answer_and_a_dropped_read(
    tmp_path: Path, start_server, start_runner
) -> None:
    server = start_server()
    path = write(tmp_path / "once.yaml", WORKFLOW)
    start_runner(server.url, "--exit-when-idle", "10")
    # The submit's answer is lost; its repeat and the first reads share a kept-alive
    # connection that then breaks; the next connection is refused at once.
    with FaultProxy(server.port, plan=["swallow", "cut", "drop"]) as proxy:
        result = stq(
            "submit", str(path), "--wait", "--answer-timeout", "1",
            env={"STQ_SERVER": proxy.url}, timeout=60,
        )  # fmt: skip
        tries = proxy.accepted
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert tries >= 4  # submit, its repeat and reads, the dropped try, the reads after it
    assert "cannot reach" not in result.stderr and "Traceback" not in result.stderr
    (only,) = Api(server.url).get("/api/v1/workflows")["workflows"]
    assert only["state"] == "completed"
    assert result.stdout.splitlines()[0] == only["id"]
    assert f"({only['id']}): completed" in result.stdout
