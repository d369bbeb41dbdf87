"""The one time-left estimate: the critical path of what is left, from durations and runs."""

from __future__ import annotations

from typing import Any

from stq.api.estimate import median_run, seconds_left, time_left
from stq.model import Task, TaskReason, TaskState, Workflow, WorkflowState

NOW = 1_800_000_000.0


def task(name: str, state: str = "todo", **fields: Any) -> Task:
    """A task record as the store reads it: ``todo``, command ``true``, no duration."""
    base: dict[str, Any] = {
        "id": f"t-{name}",
        "workflow_id": "w1",
        "name": name,
        "state": TaskState(state),
        "reason": None,
        "depends_on": (),
        "attempts_used": 0,
        "command": "true",
        "duration": None,
        "max_attempts": 1,
        "labels": (),
        "priority": 0,
        "created": NOW - 1000,
    }
    return Task(**{**base, **fields})


def ran(name: str, seconds: float, state: str = "completed", **fields: Any) -> Task:
    """A task an attempt of its own ended after ``seconds``, a while ago."""
    return task(name, state, started=NOW - 500, finished=NOW - 500 + seconds, **fields)


def workflow(*tasks: Task, state: str = "running") -> Workflow:
    return Workflow("w1", "wf", None, WorkflowState(state), NOW - 1000, None, {}, tasks)


def test_a_chain_adds_up_its_durations() -> None:
    tasks = [
        task("a", duration=10),
        task("b", depends_on=("a",), duration=20),
        task("c", depends_on=("b",), duration=30),
    ]
    assert seconds_left(tasks, NOW) == 60


def test_a_fan_out_takes_as_long_as_its_longest_branch() -> None:
    tasks = [
        task("root", duration=5),
        task("quick", depends_on=("root",), duration=10),
        task("slow", depends_on=("root",), duration=100),
        task("join", depends_on=("quick", "slow"), duration=1),
    ]
    assert seconds_left(tasks, NOW) == 106


def test_a_running_task_counts_only_what_it_has_left() -> None:
    tasks = [
        task("a", "in_process", duration=90, started=NOW - 30),
        task("b", depends_on=("a",), duration=45),
    ]
    assert seconds_left(tasks, NOW) == 60 + 45
    assert seconds_left(tasks, NOW + 100) == 45  # past its expectation: 0 left, not less


def test_finished_tasks_are_behind_and_set_the_expectation_of_undeclared_ones() -> None:
    tasks = [
        ran("a", 10),
        ran("b", 30),
        ran("c", 20, "failed"),  # failed by its own attempt: a run all the same
        ran("d", 1000, "failed", reason=TaskReason.UPSTREAM_FAILED),  # never ran
        task("e", depends_on=("a", "b")),
        task("f", depends_on=("e",), duration=5),
    ]
    assert median_run(tasks) == 20
    assert seconds_left(tasks, NOW) == 20 + 5


def test_unknown_durations_give_no_estimate() -> None:
    tasks = [task("a"), task("b", depends_on=("a",)), task("c", "in_process", started=NOW - 5)]
    assert seconds_left(tasks, NOW) is None
    assert time_left(workflow(*tasks), NOW) is None


def test_a_task_with_no_expectation_counts_as_nothing_beside_known_ones() -> None:
    tasks = [task("a", duration=40), task("b", depends_on=("a",))]
    assert seconds_left(tasks, NOW) == 40


def test_an_earlier_attempt_completing_a_task_late_says_nothing_of_run_times() -> None:
    late = task("a", "completed", started=NOW - 10, finished=NOW - 20)
    assert median_run([late]) is None


def test_the_api_answers_whole_seconds_and_only_while_running() -> None:
    tasks = (task("a", "in_process", duration=10, started=NOW - 2.5),)
    assert time_left(workflow(*tasks), NOW) == 8  # 7.5 rounded up
    assert time_left(workflow(*tasks, state="failed"), NOW) is None
    summary = Workflow("w1", "wf", None, WorkflowState.RUNNING, NOW, None, {}, None)
    assert time_left(summary, NOW) is None  # no tasks read: nothing to say
