"""status, logs, failover between URLs, and the bash runner in contrib/."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import (
    STQ,
    Api,
    assert_one_line_error,
    pid_alive,
    stq,
    submit,
    write,
)
from tests.conftest import ROOT
from tests.helpers import free_port, scrubbed_env, wait_until

ESCAPE_WF = """\
name: esc
tasks:
  noisy: {command: 'printf "line one\\n\\033[2J\\033]0;pwned\\007tail\\n"'}
"""


def test_status_and_logs(tmp_path: Path, start_server, start_runner) -> None:
    server = start_server()
    wf_id = submit(server.url, write(tmp_path / "w.yaml", ESCAPE_WF))
    start_runner(server.url, "--exit-when-idle", "5")
    Api(server.url).wait_state(wf_id, "completed")
    env = {"STQ_SERVER": server.url}

    listing = stq("status", env=env)
    assert listing.returncode == 0 and wf_id in listing.stdout and "completed" in listing.stdout
    assert all(len(line) <= 80 for line in listing.stdout.splitlines())
    one = stq("status", wf_id, env=env)
    assert "noisy" in one.stdout and "completed" in one.stdout
    assert all(len(line) <= 80 for line in one.stdout.splitlines())
    data = json.loads(stq("status", wf_id, "--json", env=env).stdout)
    task_id = data["tasks"][0]["id"]
    assert data["state"] == "completed"

    raw = stq("logs", task_id, env=env)  # not a terminal: the bytes as captured
    assert raw.stdout == "line one\n\x1b[2J\x1b]0;pwned\x07tail\n"
    assert stq("logs", task_id, "--attempt", "1", env=env).stdout == raw.stdout
    assert stq("logs", task_id, "--attempt", "2", env=env).returncode == 1
    shown = on_a_terminal([STQ, "logs", task_id], env)
    assert "\x1b" not in shown and "\\x1b[2J" in shown and "tail" in shown


def test_logs_without_output_says_why(tmp_path: Path, start_server, start_runner) -> None:
    server = start_server()
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: quiet
        tasks:
          broken: {command: 'exit 3'}
          after_broken: {command: 'true', depends_on: [broken]}
          slow: {command: 'touch started; sleep 60'}
          after_slow: {command: 'true', depends_on: [slow]}
        """,
    )
    wf_id = submit(server.url, wf)
    start_runner(server.url, "--exit-when-idle", "5")
    api = Api(server.url)
    env = {"STQ_SERVER": server.url}
    ids = {name: api.task(wf_id, name)["id"] for name in ("after_broken", "slow", "after_slow")}
    api.wait_task(wf_id, "after_broken", "failed")
    wait_until(lambda: (tmp_path / "started").exists(), what="slow started")

    upstream = stq("logs", ids["after_broken"], env=env)
    assert_one_line_error(upstream, 1)
    assert "has no attempts and will get none: a task it depends on failed" in upstream.stderr

    running = stq("logs", ids["slow"], env=env)  # what there is (nothing yet), and why
    assert running.returncode == 0 and running.stdout == ""
    assert running.stderr == "stq: attempt 1 is still running: stq logs -f follows it\n"

    assert stq("cancel", wf_id, env=env).returncode == 0
    cancelled = stq("logs", ids["after_slow"], env=env)
    assert_one_line_error(cancelled, 1)
    assert "its workflow was cancelled before it ran" in cancelled.stderr


def on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run ``argv`` with stdout on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, env=scrubbed_env(env))
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(30) == 0
    return b"".join(chunks).decode()


def test_runner_fails_over_to_the_next_url(tmp_path: Path, start_server, start_runner) -> None:
    server = start_server()
    wf_id = submit(
        server.url, write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'true'}\n")
    )
    dead = f"http://127.0.0.1:{free_port()}"
    runner = start_runner(dead, server.url, "--exit-when-idle", "1")
    Api(server.url).wait_state(wf_id, "completed")
    assert runner.wait(20) == 0
    assert f"cannot reach {dead}" in runner.log


@pytest.mark.parametrize("json_tool", ["jq", "python3"])
def test_contrib_runner_sh_completes_tasks(tmp_path: Path, start_server, json_tool: str) -> None:
    server = start_server()
    (tmp_path / "sub").mkdir()
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: sh
        tasks:
          shell: {command: 'echo "$GREETING $STQ_TASK_NAME" > out.txt', env: {GREETING: hi}}
          argv:
            command: [sh, -c, 'pwd > where.txt; cat ../out.txt']
            cwd: sub
            depends_on: [shell]
          bad: {command: 'echo broken; exit 3'}
        """,
    )
    wf_id = submit(server.url, wf)
    result = subprocess.run(
        ["bash", str(ROOT / "contrib" / "runner.sh"), server.url],
        cwd=tmp_path,
        env=scrubbed_env({"STQ_EXIT_WHEN_IDLE": "1", "STQ_JSON_TOOL": json_tool}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    api = Api(server.url)
    wf_state = api.workflow(wf_id)
    states = {t["name"]: t["state"] for t in wf_state["tasks"]}
    assert states == {"shell": "completed", "argv": "completed", "bad": "failed"}, result.stderr
    assert (tmp_path / "out.txt").read_text() == "hi shell\n"
    assert (tmp_path / "sub" / "where.txt").read_text().strip() == str(tmp_path / "sub")
    bad = api.task(wf_id, "bad")["attempts"][0]
    assert bad["exit_code"] == 3
    output = stq("logs", api.task(wf_id, "argv")["id"], env={"STQ_SERVER": server.url}).stdout
    assert output == "hi shell\n"


def test_stq_server_serves_and_stops(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [STQ, "server", "--bind", f"127.0.0.1:{port}", "--db", str(tmp_path / "s.db")],
        env=scrubbed_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _health(url), timeout=20, what="stq server up")
        assert stq("status", "--server", url).stdout.startswith("no workflows yet")
        assert (tmp_path / "s.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 0


def _health(url: str) -> bool:
    try:
        return requests.get(url + "/api/v1/health", timeout=1).ok
    except requests.RequestException:
        return False


def test_contrib_runner_sh_heartbeats_and_obeys_cancel(tmp_path: Path, start_server) -> None:
    server = start_server(heartbeat_timeout=1.2)  # lost without a heartbeat for 1.2 s
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'echo $$ > pid; sleep 60'}\n")
    wf_id = submit(server.url, wf)
    proc = subprocess.Popen(
        ["bash", str(ROOT / "contrib" / "runner.sh"), server.url],
        cwd=tmp_path,
        env=scrubbed_env({"STQ_EXIT_WHEN_IDLE": "1"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        pid_file = tmp_path / "pid"
        pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=20))
        api = Api(server.url)
        wait_until(lambda: api.task(wf_id, "a")["attempts"], what="attempt recorded")
        # Heartbeats keep it running past the 1.2 s timeout ...
        time_ok = wait_until(lambda: _running_for(api, wf_id) > 2.0, timeout=10, what="2 s")
        assert time_ok and api.task(wf_id, "a")["attempts"][0]["status"] == "running"
        # ... and a cancel reaches the command through them.
        assert stq("cancel", wf_id, "--server", server.url).returncode == 0
        wait_until(lambda: not pid_alive(pid), timeout=10, what="command killed")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0 and "finished a attempt 1: failed" in err


def _running_for(api: Api, wf_id: str) -> float:
    from stq.cli.progress import seconds_between

    attempt = api.task(wf_id, "a")["attempts"][0]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return seconds_between(attempt["started"], now) or 0.0
