"""JUnit XML reports of a finished workflow, for the test views of CI systems.

GitLab, Jenkins and the test-report actions of GitHub all read JUnit XML, so a
workflow run in CI shows there task by task: one ``<testsuite>`` named after
the workflow, one ``<testcase>`` per task in file order (classname = the
workflow's name, name = the task's name, time = its last attempt's seconds).
The suite's time is the workflow's own, from submit to end (tasks run side by
side, so their times add up to more), and its ``timestamp`` the submit time.

How each task is told:

- ``completed``: a test case that passed.
- ``completed`` with reason ``skipped`` (its ``run_if`` did not hold): ``<skipped>``.
- ``failed``: ``<failure>`` whose message is why (the last attempt's reason,
  such as ``exit code 3``) and whose text is the last 50 lines of that
  attempt's output.
- ``failed`` with reason ``upstream_failed`` or ``cancelled``: ``<failure>`` too,
  its message naming the reason (and the output's tail when a cancelled task
  was running). STQ counts these tasks as failed and they fail the workflow,
  so the report's failure count is always the number of failed tasks and no
  CI view shows a task that never succeeded as passed.
- ``todo`` or ``in_process`` (a report of a workflow that had not ended):
  ``<skipped>``, saying the task had not finished.

Text that came from commands or workflow files loses the characters XML 1.0
forbids (NUL and the other C0 controls but tab and newlines, lone surrogates,
U+FFFE and U+FFFF); ElementTree escapes the rest.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stq.cli.progress import seconds_between
from stq.errors import StqError

#: Lines of a failed task's output that its ``<failure>`` carries.
TAIL_LINES = 50

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: Failure messages for tasks that failed without failing an attempt of their own.
_TASK_REASONS = {
    "upstream_failed": "upstream_failed: not run because a task it depends on failed",
    "cancelled": "cancelled: the workflow was cancelled before this task ended",
}


@dataclass(frozen=True)
class LastAttempt:
    """What the report says about a failed task's last attempt."""

    #: From its start to its end; None while it has not ended.
    seconds: float | None
    #: Why it failed, in the attempt's words ("exit code 3"), or None.
    reason: str | None = None
    #: Its captured output (only the last lines are kept).
    output: str = ""


class AttemptReader(Protocol):
    """Where the report reads attempts; it asks only what it shows.

    ``seconds`` is asked about each task that ran and did not fail; ``failed``
    only about failed tasks that ran, the ones the report shows with output.
    Tasks that never ran cost nothing.
    """

    def seconds(self, task: Mapping[str, Any]) -> float | None: ...

    def failed(self, task: Mapping[str, Any]) -> LastAttempt | None: ...


class _Reads(Protocol):
    """The two reads of ``stq.worker.client.Client`` that ``ApiAttempts`` uses."""

    def task(self, task_id: str) -> dict[str, Any]: ...

    def output(self, attempt_id: str) -> str: ...


class ApiAttempts:
    """An ``AttemptReader`` over the API: two reads per failed task that ran, none else.

    A listed task's ``started`` is its last attempt's claim and its ``finished``
    the end of that attempt, so the seconds of a task that did not fail need no
    request; a failed one is read whole (``GET /tasks/{id}``) for its last
    attempt's reason and times, then that attempt's output.
    """

    def __init__(self, client: _Reads):
        self.client = client

    def seconds(self, task: Mapping[str, Any]) -> float | None:
        return listed_seconds(task)

    def failed(self, task: Mapping[str, Any]) -> LastAttempt | None:
        attempts = self.client.task(task["id"]).get("attempts") or []
        if not attempts:
            return None
        last = attempts[-1]
        return LastAttempt(
            seconds=seconds_between(last.get("started"), last.get("finished")),
            reason=last.get("reason") or last.get("status"),
            output=self.client.output(last["id"]),
        )


def listed_seconds(task: Mapping[str, Any]) -> float | None:
    """A task's last attempt's seconds from the task as listed: its start to its end."""
    return seconds_between(task.get("started"), task.get("finished"))


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry, even escaped."""
    return _NOT_XML.sub("", text)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, counted as ``tail -n`` counts them.

    Windows line ends become plain ones: the report's reader sees lines either way.
    """
    text = text.replace("\r\n", "\n")
    if not text:
        return ""
    body = text[:-1] if text.endswith("\n") else text
    return "\n".join(body.rsplit("\n", lines)[-lines:])


def build_report(workflow: Mapping[str, Any], attempts: AttemptReader) -> ET.Element:
    """The ``<testsuites>`` element for ``workflow`` as ``GET /workflows/{id}`` answers it."""
    name = workflow["name"]
    suite = ET.Element("testsuite")
    properties = _element(suite, "properties")
    for key in ("id", "state"):
        _element(properties, "property", name=f"workflow_{key}", value=workflow.get(key) or "")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    total = 0.0
    for task in workflow.get("tasks") or []:
        verdict, seconds = _testcase(suite, name, task, attempts)
        counts["tests"] += 1
        if verdict:
            counts[verdict] += 1
        total += seconds
    wall = seconds_between(workflow.get("created"), workflow.get("finished"))
    summary = {
        "name": name,
        **counts,
        "errors": 0,
        "time": _seconds(total if wall is None else wall),
    }
    _set(suite, **summary, timestamp=(workflow.get("created") or "")[:19])
    root = ET.Element("testsuites")
    _set(root, **summary)
    root.append(suite)
    return root


def write_report(
    path: str | os.PathLike[str], workflow: Mapping[str, Any], attempts: AttemptReader
) -> None:
    """Write the JUnit XML report of ``workflow`` to ``path``, whole or not at all.

    The file appears in one rename, so a CI step that uploads it never reads
    half a report; a path that cannot be written is an ``StqError`` (exit 1).
    """
    tree = ET.ElementTree(build_report(workflow, attempts))
    ET.indent(tree)
    _write_atomically(Path(path), tree)


def _testcase(
    suite: ET.Element, classname: str, task: Mapping[str, Any], attempts: AttemptReader
) -> tuple[str | None, float]:
    """Add the task's ``<testcase>``; its verdict ("failures", "skipped" or None) and time."""
    ran = bool(task.get("attempts_used"))
    failed = task["state"] == "failed"
    last = attempts.failed(task) if failed and ran else None
    if last is not None:
        seconds = last.seconds
    else:
        seconds = attempts.seconds(task) if ran else None
    seconds = max(0.0, seconds or 0.0)
    case = _element(
        suite, "testcase", classname=classname, name=task["name"], time=_seconds(seconds)
    )
    if failed:
        _failure(case, task, last)
        return "failures", seconds
    skipped = _skip_message(task)
    if skipped:
        _element(case, "skipped", message=skipped)
        return "skipped", seconds
    return None, seconds


def _failure(case: ET.Element, task: Mapping[str, Any], last: LastAttempt | None) -> None:
    reason = task.get("reason") or "failed"
    message = _failure_message(reason, last.reason if last else None)
    failure = _element(case, "failure", message=message, type=reason)
    if last is not None and last.output:
        failure.text = xml_text(tail(last.output))


def _failure_message(reason: str, attempt_reason: str | None) -> str:
    """'failed: exit code 3', or the task's own reason and what its last attempt said."""
    if reason not in _TASK_REASONS:
        return f"{reason}: {attempt_reason}" if attempt_reason else reason
    if attempt_reason and attempt_reason != reason:
        return f"{_TASK_REASONS[reason]} (last attempt: {attempt_reason})"
    return _TASK_REASONS[reason]


def _skip_message(task: Mapping[str, Any]) -> str | None:
    """Why a task that did not fail counts as skipped, or None when it passed."""
    if task["state"] in ("todo", "in_process"):
        return f"not finished: still {task['state']} when the report was written"
    if task.get("reason") == "skipped":
        return "skipped: its run_if condition did not hold"
    return None


def _element(parent: ET.Element, tag: str, **attrs: Any) -> ET.Element:
    element = ET.SubElement(parent, tag)
    _set(element, **attrs)
    return element


def _set(element: ET.Element, **attrs: Any) -> None:
    for key, value in attrs.items():
        element.set(key, xml_text(str(value)))


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _write_atomically(path: Path, tree: ET.ElementTree) -> None:
    """Write into a new file beside ``path``, then rename it over ``path``."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "xb") as out:
            tree.write(out, encoding="utf-8", xml_declaration=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as ex:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise StqError(f"cannot write the JUnit report {path}: {ex.strerror or ex}") from ex
