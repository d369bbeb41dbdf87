"""How long a running workflow has left: the one estimate every view shows.

The server makes it, from the workflow's tasks, and answers it as ``time_left``
with the workflow; the dashboard (list and workflow page) and the progress line
of ``stq submit --wait`` and ``stq run`` only display it, so they cannot
disagree. Pure functions: the caller passes the tasks and the time.

Each task not yet finished is expected to run for its declared ``duration``,
else for the median run time of this workflow's tasks that an attempt of their
own ended (completed, or failed by that attempt); a running task has already
used part of that. The time left is the longest chain of those expectations
through the unfinished part of the DAG (its critical path), as if a runner were
free for every task that can start. A task with no expectation counts as 0 s;
when no unfinished task has one, there is no estimate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from graphlib import TopologicalSorter

from stq.model import Task, TaskState, Workflow, WorkflowState


def time_left(workflow: Workflow, now: float) -> int | None:
    """Whole seconds left (rounded up) of a running workflow read with its tasks; else None.

    Whole seconds, so that every client writes the same number the same way.
    """
    if workflow.state != WorkflowState.RUNNING or workflow.tasks is None:
        return None
    left = seconds_left(workflow.tasks, now)
    return None if left is None else math.ceil(left)


def seconds_left(tasks: Sequence[Task], now: float) -> float | None:
    """The critical path through the tasks not yet terminal, in seconds; None when unknown."""
    typical = median_run(tasks)
    unfinished = {t.name: t for t in tasks if not t.state.terminal}
    remaining = {name: remaining_seconds(t, typical, now) for name, t in unfinished.items()}
    if all(seconds is None for seconds in remaining.values()):
        return None
    # A terminal dependency is behind us: only unfinished ones hold a task back.
    waits_for = {n: [d for d in t.depends_on if d in unfinished] for n, t in unfinished.items()}
    finish: dict[str, float] = {}
    for name in TopologicalSorter(waits_for).static_order():
        start = max((finish[d] for d in waits_for[name]), default=0.0)
        finish[name] = start + (remaining[name] or 0.0)
    return max(finish.values())


def remaining_seconds(task: Task, typical: float | None, now: float) -> float | None:
    """What is left of the task's expected run: all of it, less what a running attempt ran."""
    expected = task.duration if task.duration is not None else typical
    if expected is None:
        return None
    if task.state == TaskState.IN_PROCESS and task.started is not None:
        return max(0.0, expected - max(0.0, now - task.started))
    return expected


def median_run(tasks: Sequence[Task]) -> float | None:
    """The median run time of the tasks an attempt of their own ended; None before any did.

    A task carries its latest attempt's start and its own end, which are that
    attempt's only when the attempt ended it (no task ``reason``: not failed
    upstream or cancelled). An end before the start (an earlier attempt that
    completed the task while a newer one ran) says nothing and is left out.
    """
    runs = [
        t.finished - t.started
        for t in tasks
        if t.state.terminal
        and t.reason is None
        and t.started is not None
        and t.finished is not None
        and t.finished >= t.started
    ]
    return statistics.median(runs) if runs else None
