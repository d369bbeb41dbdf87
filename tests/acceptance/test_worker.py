"""``stq worker`` against a live gunicorn: drain, cancel, retry, lost runners, outages."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.support import Api, Runner, pid_alive, stq, submit, write
from tests.helpers import BIN, LiveServer, healthy, scrubbed_env, wait_until

Start = Callable[..., LiveServer]
StartRunner = Callable[..., Runner]


def test_submit_wait_exit_codes(tmp_path: Path, start_server: Start, start_runner) -> None:
    server = start_server()
    start_runner(server.url, "--exit-when-idle", "20")
    good = write(tmp_path / "good.yaml", "name: good\ntasks:\n  a: {command: 'true'}\n")
    bad = write(
        tmp_path / "bad.yaml",
        "name: bad\ntasks:\n  a: {command: 'echo oops-the-tail; exit 4'}\n"
        "  b: {command: 'true', depends_on: [a]}\n",
    )
    ok = stq("submit", str(good), "--wait", "--server", server.url, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    failed = stq("submit", str(bad), "--wait", "--server", server.url, cwd=tmp_path)
    assert failed.returncode == 1
    assert "oops-the-tail" in failed.stdout and "exit code 4" in failed.stdout
    assert "upstream_failed" in failed.stdout and "Traceback" not in failed.stderr


def test_sigterm_drains_the_current_attempt(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server()
    wf = write(
        tmp_path / "two.yaml",
        """\
        name: two
        tasks:
          first: {command: 'touch started; sleep 1; touch finished', priority: 1}
          second: {command: 'touch second-ran'}
        """,
    )
    wf_id = submit(server.url, wf)
    runner = start_runner(server.url)
    wait_until(lambda: (tmp_path / "started").exists(), timeout=20, what="first started")
    runner.signal(signal.SIGTERM)
    assert runner.wait(20) == 0
    assert (tmp_path / "finished").exists() and not (tmp_path / "second-ran").exists()
    api = Api(server.url)
    assert api.task(wf_id, "first")["state"] == "completed"
    assert api.task(wf_id, "second")["state"] == "todo"
    assert "finished first attempt 1: completed, exit code 0" in runner.log


def test_second_signal_kills_and_reports_failed(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server()
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'echo $$ > pid; sleep 60'}\n")
    wf_id = submit(server.url, wf)
    runner = start_runner(server.url)
    pid = int(wait_until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text()))
    runner.signal(signal.SIGTERM)
    wait_until(lambda: "stopping" in runner.log, what="first signal handled")
    runner.signal(signal.SIGINT)
    assert runner.wait(20) == 0
    assert not pid_alive(pid)
    task = Api(server.url).task(wf_id, "a")
    assert task["state"] == "failed" and "runner stopped" in task["attempts"][0]["reason"]


def test_cancel_kills_a_running_command(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server(heartbeat_timeout=1.5)  # runners beat every 0.25 s
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'echo $$ > pid; sleep 60'}\n")
    wf_id = submit(server.url, wf)
    runner = start_runner(server.url)
    pid = int(wait_until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text()))
    result = stq("cancel", wf_id, "--server", server.url)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: not pid_alive(pid), timeout=10, what="the command killed")
    wait_until(lambda: "cancelled" in runner.log, what="runner logged the cancel")
    task = Api(server.url).task(wf_id, "a")
    assert task["state"] == "failed" and task["reason"] == "cancelled"


def test_retry_reruns_only_the_failed_part(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server()
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: w
        tasks:
          ok: {command: 'echo ok >> ran.txt'}
          shaky: {command: 'echo shaky >> ran.txt; test -e fixed', depends_on: [ok]}
          after: {command: 'echo after >> ran.txt', depends_on: [shaky]}
        """,
    )
    wf_id = submit(server.url, wf)
    start_runner(server.url)
    api = Api(server.url)
    api.wait_state(wf_id, "failed")
    (tmp_path / "fixed").touch()
    assert stq("retry", wf_id, "--server", server.url).returncode == 0
    api.wait_state(wf_id, "completed")
    assert (tmp_path / "ran.txt").read_text().split() == ["ok", "shaky", "shaky", "after"]
    shaky = api.task(wf_id, "shaky")
    assert [a["number"] for a in shaky["attempts"]] == [1, 2]


def test_killed_runner_is_presumed_lost_and_another_completes(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server(heartbeat_timeout=2)
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: w
        tasks:
          a:
            command: 'if [ -e first ]; then exit 0; fi; echo $$ > first; sleep 60'
            max_attempts: 2
        """,
    )
    wf_id = submit(server.url, wf)
    doomed = start_runner(server.url, "--name", "doomed")
    first = tmp_path / "first"
    pid = int(wait_until(lambda: first.exists() and first.read_text(), what="first attempt"))
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    try:
        start_runner(server.url, "--name", "rescuer")
        task = Api(server.url).wait_task(wf_id, "a", "completed", timeout=20)
    finally:
        os.killpg(pid, signal.SIGKILL)  # the orphaned command of the killed runner
    first_attempt, second = task["attempts"]
    assert first_attempt["runner"] == "doomed" and first_attempt["status"] != "running"
    assert second["runner"] == "rescuer" and second["status"] == "completed"


def test_late_success_completes_the_task(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server(heartbeat_timeout=1)
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: w
        tasks:
          a: {command: 'touch started; sleep 2', max_attempts: 2, retry_delay: 60}
        """,
    )
    wf_id = submit(server.url, wf)
    runner = start_runner(server.url)
    api = Api(server.url)
    wait_until(lambda: (tmp_path / "started").exists(), timeout=20, what="command started")
    runner.signal(signal.SIGSTOP)  # no heartbeats: the server presumes the attempt lost
    try:
        wait_until(
            lambda: api.task(wf_id, "a")["attempts"][0]["status"] != "running",
            timeout=10,
            what="attempt presumed lost",
        )
        assert api.task(wf_id, "a")["state"] == "todo"
    finally:
        runner.signal(signal.SIGCONT)
    task = api.wait_task(wf_id, "a", "completed", timeout=10)
    assert task["attempts_used"] == 1


def test_result_survives_a_server_outage(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server()
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'touch go; sleep 1.5'}\n")
    wf_id = submit(server.url, wf)
    runner = start_runner(server.url)
    wait_until(lambda: (tmp_path / "go").exists(), timeout=20, what="command started")
    port = server.port
    server.kill()  # the result gets ready while nobody listens
    wait_until(lambda: "cannot reach" in runner.log, timeout=10, what="runner noticed")
    assert "finished a attempt 1: completed" in runner.log  # held, not delivered
    again = restart_on(server, port)
    try:
        Api(server.url).wait_state(wf_id, "completed", timeout=30)
        # before the server goes: the commit precedes the answer the runner logs on
        wait_until(lambda: "reached" in runner.log, what="runner logged the recovery")
    finally:
        os.killpg(again.pid, signal.SIGKILL)
        again.wait(10)


def restart_on(server: LiveServer, port: int) -> subprocess.Popen[bytes]:
    """gunicorn again on the same port and the same database file."""
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "stq.api:app",
            "--bind",
            f"127.0.0.1:{port}",
            "-k",
            "gthread",
            "--threads",
            "8",
        ],
        env=scrubbed_env({"STQ_DB": str(server.db)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=20, what="restart")
    return proc


def test_labels_route_tasks(tmp_path: Path, start_server: Start, start_runner) -> None:
    server = start_server()
    wf = write(
        tmp_path / "w.yaml",
        """\
        name: w
        tasks:
          gpu-job: {command: 'true', labels: [gpu]}
          plain-job: {command: 'true'}
        """,
    )
    wf_id = submit(server.url, wf)
    start_runner(server.url, "--name", "plain", "--exit-when-idle", "1")
    api = Api(server.url)
    api.wait_task(wf_id, "plain-job", "completed")
    assert api.task(wf_id, "gpu-job")["state"] == "todo"
    start_runner(server.url, "--name", "gpu", "--labels", "gpu,fast", "--exit-when-idle", "2")
    task = api.wait_task(wf_id, "gpu-job", "completed")
    assert task["attempts"][0]["runner"] == "gpu"


def test_heartbeats_keep_a_long_attempt_alive(
    tmp_path: Path, start_server: Start, start_runner: StartRunner
) -> None:
    server = start_server(heartbeat_timeout=0.6)  # lost after 0.6 s without a heartbeat
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'sleep 2'}\n")
    wf_id = submit(server.url, wf)
    start_runner(server.url)
    task = Api(server.url).wait_task(wf_id, "a", "completed", timeout=20)
    assert [a["status"] for a in task["attempts"]] == ["completed"]
