"""``stq logs -f`` shows output as it is printed, through a retry; ``--junit`` reports."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import junitparser
import pytest

from tests.acceptance.support import STQ, Api, Runner, stq, submit, write
from tests.helpers import LiveServer, scrubbed_env, wait_until

pytestmark = pytest.mark.slow

RETRIED = """\
name: follow
tasks:
  step:
    command: >-
      n=$STQ_ATTEMPT_NUMBER; echo "try $n"; sleep 2; echo "done $n"; [ "$n" = 2 ]
    max_attempts: 2
"""


@contextmanager
def following_the_retried_task(
    tmp_path: Path, start_server: Callable[..., LiveServer], *flags: str
) -> Iterator[tuple[LiveServer, subprocess.Popen[str]]]:
    """``stq logs -f FLAGS`` on RETRIED's task, started before any runner; killed on exit."""
    server = start_server()
    wf_id = submit(server.url, write(tmp_path / "wf.yaml", RETRIED))
    task_id = Api(server.url).task(wf_id, "step")["id"]
    with subprocess.Popen(
        [STQ, "logs", task_id, "-f", *flags, "--server", server.url],
        env=scrubbed_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follow:
        try:
            yield server, follow
        finally:
            follow.kill()


def _lines_as_they_come(proc: subprocess.Popen[str]) -> list[tuple[float, str]]:
    """Read ``proc``'s stdout on a thread, each line with when it arrived."""
    got: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            got.append((time.monotonic(), line.rstrip("\n")))

    threading.Thread(target=read, daemon=True).start()
    return got


def test_logs_follow_prints_output_live_through_a_retry(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    with following_the_retried_task(tmp_path, start_server) as (server, follow):
        lines = _lines_as_they_come(follow)
        start_runner(server.url)
        assert follow.wait(60) == 0
        assert follow.stderr is not None
        said = follow.stderr.read()
    assert [text for _, text in lines] == ["try 1", "done 1", "try 2", "done 2"]
    # "try 1" was shown while the command still ran: two seconds before "done 1"
    assert lines[1][0] - lines[0][0] > 1.0
    assert "attempt 1 failed: exit code 1" in said
    assert "Traceback" not in said


def test_logs_says_a_running_attempt_is_still_running(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server = start_server()
    wf = write(tmp_path / "wf.yaml", "name: w\ntasks:\n  a: {command: 'echo hi; sleep 30'}\n")
    wf_id = submit(server.url, wf)
    start_runner(server.url)
    api = Api(server.url)
    task = api.wait_task(wf_id, "a", "in_process")

    def shown() -> subprocess.CompletedProcess[str] | None:
        result = stq("logs", task["id"], "--server", server.url)
        return result if result.stdout == "hi\n" else None

    result = wait_until(shown, timeout=15, what="the streamed line")
    assert result.returncode == 0
    assert "still running" in result.stderr and "stq logs -f" in result.stderr


def test_run_writes_a_junit_report(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "ci.yaml",
        """\
        name: ci
        tasks:
          build: {command: 'echo built'}
          test: {command: 'echo "1 failed"; exit 3', depends_on: [build]}
          deploy: {command: 'true', depends_on: [test]}
        """,
    )
    report = tmp_path / "report.xml"
    result = stq("run", str(wf), "--junit", str(report), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    suite = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    cases = {case.name: case for case in suite}
    assert set(cases) == {"build", "test", "deploy"}
    assert all(case.classname == "ci" for case in cases.values())
    assert cases["build"].is_passed
    (failure,) = cases["test"].result
    assert isinstance(failure, junitparser.Failure) and "1 failed" in (failure.text or "")
    assert not cases["deploy"].is_passed  # upstream failed
    assert suite.tests == 3 and suite.failures == 2


def test_submit_junit_needs_wait(tmp_path: Path) -> None:
    wf = write(tmp_path / "w.yaml", "name: w\ntasks:\n  a: {command: 'true'}\n")
    result = stq("submit", str(wf), "--junit", str(tmp_path / "r.xml"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--junit needs --wait" in result.stderr
