"""What ``SqlStore``'s reads ask inside their snapshot: workflows, tasks, output, metrics.

Each function reads within one open transaction (``Tx``) and builds the
records of ``stq.model``; opening the snapshot, and settling a workflow whose
counts contradict its state, is ``SqlStore``'s part.
"""

from __future__ import annotations

from collections.abc import Sequence

from stq.model import (
    AttemptStatus,
    Metrics,
    OutputSlice,
    Task,
    TaskState,
    Workflow,
    WorkflowState,
)
from stq.store import output, records, rules
from stq.store.statements import named
from stq.store.tx import Tx
from stq.store.waiting import Waits

WORKFLOW = named("workflow")
WORKFLOW_TASKS = named("workflow_tasks")
TASK = named("task")
TASK_ATTEMPTS = named("task_attempts")
#: The newest workflows, by (older than a given one, in a given state).
WORKFLOWS = {
    (False, False): named("workflows"),
    (True, False): named("workflows_before"),
    (False, True): named("workflows_in_state"),
    (True, True): named("workflows_in_state_before"),
}
#: Tasks by workflow and file order, by (in a given state, of a given workflow).
TASKS = {
    (False, False): named("tasks"),
    (True, False): named("tasks_in_state"),
    (False, True): named("tasks_of_workflow"),
    (True, True): named("tasks_in_state_of_workflow"),
}
ATTEMPTS_CANCEL_FACTS = named("attempts_cancel_facts")
ATTEMPT_STATUS = named("attempt_status")
ATTEMPT_OUTPUT = named("attempt_output")
TASK_COUNTS = named("task_counts")
ATTEMPT_COUNTS = named("attempt_counts")


def workflow(tx: Tx, wid: int, waits: Waits | None) -> Workflow:
    """The workflow, with its tasks (each todo one with its wait) when ``waits`` is given."""
    row = tx.one(WORKFLOW, (wid,))
    if row is None:
        raise records.not_found("w", wid)
    tasks = None
    if waits is not None:
        rows = tx.run(WORKFLOW_TASKS, (wid,))  # streamed: no second list of 100k rows
        tasks = tuple(waits.tasks(rows))
    return records.workflow_from_row(row, tasks)


def workflows(
    tx: Tx, limit: int, before: int | None, state: WorkflowState | None
) -> list[Workflow]:
    """The newest ``limit`` workflows older than ``before`` (an id) and in ``state``, if given."""
    params: list[object] = [] if before is None else [before]
    params += [] if state is None else [state.value]
    rows = tx.all(WORKFLOWS[before is not None, state is not None], (*params, max(0, limit)))
    return [records.workflow_from_row(r) for r in rows]


def tasks(tx: Tx, waits: Waits, state: TaskState | None, workflow_id: int | None) -> list[Task]:
    """Every task in ``state`` and of ``workflow_id``, if given, by workflow and file order."""
    params: list[object] = [] if state is None else [state.value]
    params += [] if workflow_id is None else [workflow_id]
    rows = tx.all(TASKS[state is not None, workflow_id is not None], params)
    return list(waits.tasks(rows))


def task(tx: Tx, tid: int, waits: Waits) -> Task:
    """The task with its attempts."""
    row = tx.one(TASK, (tid,))
    if row is None:
        raise records.not_found("t", tid)
    attempts = tuple(records.attempt_from_row(a) for a in tx.all(TASK_ATTEMPTS, (tid,)))
    return next(iter(waits.tasks([row], attempts)))


def stopping(tx: Tx, ids: Sequence[int]) -> dict[str, bool]:
    """Of the attempts ``ids``, those that ended or must stop: whether to stop the command."""
    found: dict[str, bool] = {}
    if not ids:
        return found
    for aid, status, reason, task_state in tx.all(
        ATTEMPTS_CANCEL_FACTS, (tx.dialect.ids_param(ids),)
    ):
        # An attempt its own result completed has no command left to stop.
        done = status == AttemptStatus.COMPLETED.value
        cancel = not done and rules.cancel_asked(reason, task_state)
        if cancel or status != AttemptStatus.RUNNING.value:
            found[records.make_id("a", aid)] = cancel
    return found


def output_from(tx: Tx, aid: int, offset: int) -> OutputSlice:
    """The attempt's output kept from byte ``offset`` on, and whether the attempt ended."""
    row = tx.one(ATTEMPT_STATUS, (aid,))
    if row is None:
        raise records.not_found("a", aid)
    kept = output.read_from(output.kept(tx, aid), offset)
    finished = row[0] != AttemptStatus.RUNNING.value
    return OutputSlice(kept.text, kept.start, kept.end, finished)


def read_output(tx: Tx, aid: int) -> str:
    """The attempt's output as kept."""
    row = tx.one(ATTEMPT_OUTPUT, (aid,))
    if row is None:
        raise records.not_found("a", aid)
    return row[0] or ""


def metrics(tx: Tx) -> Metrics:
    """Tasks per state and attempts per status, over the whole store."""
    sums = tx.one(TASK_COUNTS)
    found = dict(tx.all(ATTEMPT_COUNTS))
    attempts = {s.value: int(found.get(s.value, 0)) for s in AttemptStatus}
    return Metrics(tasks=records.counts_from(sums), attempts=attempts)
