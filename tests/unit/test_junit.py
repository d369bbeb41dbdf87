"""JUnit reports: what CI test views read back, parsed with junitparser.

Workflows come as ``GET /api/v1/workflows/{id}`` answers them; the last test
runs a real one on a live server with a real runner and reads it through
``ApiAttempts`` over the real client.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml, Skipped, TestCase

from stq.cli.junit import (
    ApiAttempts,
    LastAttempt,
    build_report,
    listed_seconds,
    tail,
    write_report,
    xml_text,
)
from stq.cli.progress import seconds_between
from stq.errors import StqError
from stq.worker.client import Client
from tests.helpers import BIN, LiveServer, scrubbed_env

CREATED = "2026-12-07T12:00:00.000Z"


def task(name: str, state: str = "completed", reason: str | None = None, **extra: Any) -> dict:
    """A task as listed in a workflow; one that ran took 2.5 s unless told otherwise."""
    ran = extra.get("attempts_used", 0 if reason else 1)
    times = {"started": "2026-12-07T12:00:01.000Z", "finished": "2026-12-07T12:00:03.500Z"}
    return {
        "id": f"t-{name}",
        "name": name,
        "state": state,
        "reason": reason,
        "attempts_used": ran,
        **(times if ran else {"started": None, "finished": None}),
        **extra,
    }


def workflow(*tasks: dict, name: str = "ci", finished: str | None = None) -> dict:
    return {
        "id": "42",
        "name": name,
        "state": "failed",
        "created": CREATED,
        "finished": finished,
        "tasks": list(tasks),
    }


class Recorded:
    """An AttemptReader that answers from a table and records what it was asked."""

    def __init__(self, failures: Mapping[str, LastAttempt] | None = None):
        self.failures = dict(failures or {})
        self.asked: list[tuple[str, str]] = []

    def seconds(self, task: Mapping[str, Any]) -> float | None:
        self.asked.append(("seconds", task["name"]))
        return listed_seconds(task)

    def failed(self, task: Mapping[str, Any]) -> LastAttempt | None:
        self.asked.append(("failed", task["name"]))
        return self.failures.get(task["name"])


def report(tmp_path: Path, wf: dict, reader: Any) -> JUnitXml:
    path = tmp_path / "report.xml"
    write_report(path, wf, reader)
    return JUnitXml.fromfile(str(path))


def cases(xml: JUnitXml) -> dict[str, TestCase]:
    (suite,) = list(xml)
    return {case.name: case for case in suite}


def only_result(case: TestCase) -> Failure | Skipped:
    (result,) = case.result
    return result


def test_every_task_is_one_testcase_named_after_its_workflow(tmp_path: Path) -> None:
    wf = workflow(
        task("build"),
        task("test", "failed", attempts_used=2),
        task("deploy", "failed", "upstream_failed"),
        task("notify", "completed", "skipped"),
        finished="2026-12-07T12:00:09.250Z",
    )
    failure = LastAttempt(seconds=1.25, reason="exit code 3", output="boom\n")
    xml = report(tmp_path, wf, Recorded({"test": failure}))

    (suite,) = list(xml)
    assert (suite.name, suite.tests, suite.failures, suite.skipped, suite.errors) == (
        "ci",
        4,
        2,
        1,
        0,
    )
    assert suite.time == 9.25  # the workflow's wall time: tasks may run side by side
    assert (xml.tests, xml.failures, xml.skipped) == (4, 2, 1)
    assert {p.name: p.value for p in suite.properties()} == {
        "workflow_id": "42",
        "workflow_state": "failed",
    }
    by_name = cases(xml)
    assert list(by_name) == ["build", "test", "deploy", "notify"]
    assert {case.classname for case in by_name.values()} == {"ci"}
    assert by_name["build"].is_passed and by_name["build"].time == 2.5
    assert by_name["test"].time == 1.25  # the failed attempt's own seconds
    assert by_name["deploy"].time == 0 and by_name["notify"].time == 0
    assert by_name["notify"].is_skipped


def test_a_failure_carries_the_reason_and_the_last_50_lines(tmp_path: Path) -> None:
    output = "".join(f"line {n}\n" for n in range(1, 121))
    failure = LastAttempt(seconds=3.0, reason="exit code 7", output=output)
    xml = report(tmp_path, workflow(task("test", "failed")), Recorded({"test": failure}))

    result = only_result(cases(xml)["test"])
    assert isinstance(result, Failure)
    assert (result.message, result.type) == ("failed: exit code 7", "failed")
    assert result.text.splitlines() == [f"line {n}" for n in range(71, 121)]


def test_tasks_that_never_ran_fail_with_their_reason(tmp_path: Path) -> None:
    running_when_cancelled = LastAttempt(seconds=0.5, reason="cancelled", output="half\n")
    wf = workflow(
        task("downstream", "failed", "upstream_failed"),
        task("queued", "failed", "cancelled"),
        task("running", "failed", "cancelled", attempts_used=1),
    )
    by_name = cases(report(tmp_path, wf, Recorded({"running": running_when_cancelled})))

    downstream = only_result(by_name["downstream"])
    assert isinstance(downstream, Failure) and downstream.type == "upstream_failed"
    assert downstream.message.startswith("upstream_failed: ")
    assert downstream.text is None
    queued = only_result(by_name["queued"])
    assert queued.type == "cancelled" and queued.message.startswith("cancelled: ")
    running = only_result(by_name["running"])
    assert running.message == queued.message and running.text == "half"
    assert by_name["running"].time == 0.5


def test_a_cancelled_task_that_had_failed_before_says_how(tmp_path: Path) -> None:
    earlier = LastAttempt(seconds=1.0, reason="exit code 1", output="")
    wf = workflow(task("flaky", "failed", "cancelled", attempts_used=1))
    result = only_result(cases(report(tmp_path, wf, Recorded({"flaky": earlier})))["flaky"])
    assert result.message.endswith("(last attempt: exit code 1)")


def test_skipped_and_unfinished_tasks_are_skipped(tmp_path: Path) -> None:
    wf = workflow(
        task("notify", "completed", "skipped"),
        task("waiting", "todo", attempts_used=0),
        task("busy", "in_process", finished=None),
    )
    by_name = cases(report(tmp_path, wf, Recorded()))

    assert {name: case.is_skipped for name, case in by_name.items()} == dict.fromkeys(
        ("notify", "waiting", "busy"), True
    )
    assert only_result(by_name["notify"]).message.startswith("skipped")
    assert "in_process" in only_result(by_name["busy"]).message
    assert by_name["busy"].time == 0  # its attempt has not ended


def test_the_report_asks_only_for_what_it_shows() -> None:
    wf = workflow(
        task("ok"),
        task("bad", "failed"),
        task("downstream", "failed", "upstream_failed"),
        task("notify", "completed", "skipped"),
        task("waiting", "todo", attempts_used=0),
    )
    reader = Recorded({"bad": LastAttempt(1.0, "exit code 1", "x")})
    build_report(wf, reader)
    assert reader.asked == [("seconds", "ok"), ("failed", "bad")]


def test_characters_xml_forbids_are_dropped(tmp_path: Path) -> None:
    with pytest.raises(ET.ParseError):  # what the report must never contain
        ET.fromstring("<a>\x1b</a>")
    dirty = "a\x00b\x1b[31mc\x07\ud800d\udfffe\ufffef\x0bg\tå😀\r\n"
    failure = LastAttempt(seconds=1.0, reason="exit\x00 code\x1b 2", output=dirty)
    path = tmp_path / "report.xml"
    write_report(path, workflow(task("t", "failed")), Recorded({"t": failure}))

    result = only_result(cases(JUnitXml.fromfile(str(path)))["t"])
    assert result.message == "failed: exit code 2"
    assert result.text == "ab[31mcdefg\tå😀"
    assert xml_text(dirty) == "ab[31mcdefg\tå😀\r\n"


def test_tail_counts_lines_as_tail_does() -> None:
    assert tail("") == ""
    assert tail("one") == "one"
    assert tail("a\nb\nc\n", 2) == "b\nc"
    assert tail("a\nb\nc", 2) == "b\nc"
    assert tail("a\n\n\n", 2) == "\n"  # blank lines count
    assert tail("x\n" * 10, 50) == "\n".join(["x"] * 10)
    assert tail("a\r\nb\r\n", 1) == "b"


def test_ten_thousand_tasks_make_one_report(tmp_path: Path) -> None:
    tasks = [task(f"t{n}") for n in range(10_000)]
    tasks[5_000] = task("t5000", "failed")
    reader = Recorded({"t5000": LastAttempt(2.0, "exit code 1", "x\n" * 100)})
    xml = report(tmp_path, workflow(*tasks), reader)

    (suite,) = list(xml)
    assert (suite.tests, suite.failures, suite.skipped) == (10_000, 1, 0)
    assert suite.time == 10_000 * 2.5 - 0.5  # no wall time: the cases' sum
    assert len(reader.asked) == 10_000


def test_the_file_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    path.write_text("an older report")
    write_report(path, workflow(task("a")), Recorded())
    assert JUnitXml.fromfile(str(path)).tests == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]


def test_a_path_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "report.xml"
    with pytest.raises(StqError, match=r"cannot write the JUnit report .*no-such-dir"):
        write_report(missing, workflow(task("a")), Recorded())
    (tmp_path / "a-dir").mkdir()
    with pytest.raises(StqError, match="cannot write the JUnit report"):
        write_report(tmp_path / "a-dir", workflow(task("a")), Recorded())
    assert [p.name for p in tmp_path.iterdir()] == ["a-dir"]
    assert list((tmp_path / "a-dir").iterdir()) == []


WORKFLOW = """\
name: junit-live
tasks:
  ok:
    command: echo fine
  noisy:
    command: "for i in $(seq 1 60); do echo out $i; done; exit 3"
  after:
    command: echo never
    depends_on: [noisy]
"""


def _run_to_the_end(server: LiveServer, tmp_path: Path) -> str:
    """Submit WORKFLOW and serve it with one real runner until it is idle."""
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    stq = [str(BIN / "stq")]
    submitted = subprocess.run(
        [*stq, "submit", "wf.yaml", "--server", server.url],
        cwd=tmp_path,
        env=scrubbed_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    subprocess.run(
        [*stq, "worker", server.url, "--exit-when-idle", "1"],
        cwd=tmp_path,
        env=scrubbed_env(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return submitted.stdout.strip()


def test_a_real_run_read_through_the_api(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    workflow_id = _run_to_the_end(live_server, tmp_path)
    client = Client(live_server.url)
    request.addfinalizer(client.close)
    wf = client.workflow(workflow_id)
    assert wf["state"] == "failed"
    xml = report(tmp_path, wf, ApiAttempts(client))

    by_name = cases(xml)
    assert (xml.tests, xml.failures, xml.skipped) == (3, 2, 0)
    assert by_name["ok"].is_passed
    noisy = only_result(by_name["noisy"])
    assert noisy.message == "failed: exit code 3"
    assert noisy.text.splitlines() == [f"out {n}" for n in range(11, 61)]
    assert only_result(by_name["after"]).type == "upstream_failed"
    for listed in wf["tasks"]:  # what lets ApiAttempts skip a read for a task that passed
        if listed["attempts_used"]:
            (attempt,) = client.task(listed["id"])["attempts"]
            exact = seconds_between(attempt["started"], attempt["finished"])
            assert listed_seconds(listed) == exact
            assert by_name[listed["name"]].time == round(exact, 3)
