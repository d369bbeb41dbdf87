"""What ``SqlStore``'s own writes do inside their transaction: submit, heartbeat, output, delete.

Claims, results and state changes have modules of their own (``claim``,
``reports``, ``transitions``); running each write in one transaction, with
expiry before it and counters after it, is ``SqlStore``'s part.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from stq.errors import Conflict
from stq.model import (
    AttemptStatus,
    RunIf,
    Task,
    TaskReason,
    TaskState,
    Workflow,
    WorkflowSpec,
    WorkflowState,
)
from stq.store import dependents, output, records, rules, runners, submission, transitions
from stq.store.base import Idempotency, Submission
from stq.store.reads import WORKFLOW, workflow
from stq.store.statements import named
from stq.store.tx import Tx
from stq.store.waiting import Waits

INSERT_WORKFLOW = named("insert_workflow")
INSERT_TASK = named("insert_task")
INSERT_DEPENDENCY = named("insert_dependency")
SUBMITTED_TASK_IDS = named("submitted_task_ids")
ATTEMPT_CANCEL_FACTS = named("attempt_cancel_facts")
BEAT_ATTEMPT = named("beat_attempt")
WORKFLOW_STATE = named("workflow_state")
#: Children first, so foreign keys hold at every step.
DELETE_WORKFLOW = (
    submission.FORGET_WORKFLOW_KEYS,
    named("delete_workflow_counts"),
    named("delete_workflow_output"),
    named("delete_workflow_attempts"),
    named("delete_workflow_dependencies"),
    named("delete_workflow_tasks"),
    named("delete_workflow"),
)


def submit(tx: Tx, spec: WorkflowSpec, depends: list[tuple[str, ...]]) -> Workflow:
    """Store the workflow and its tasks (``depends``: each task's distinct dependencies).

    The answer is built from the spec, not read back; ``on_failure`` tasks
    with nothing to wait for are skipped at once.
    """
    has_run_if = any(t.run_if != RunIf.ON_SUCCESS for t in spec.tasks)
    params = records.dump_mapping(spec.params)
    row = (spec.name, spec.description, tx.now, len(spec.tasks), params, int(has_run_if))
    wid = int(tx.one(INSERT_WORKFLOW, row)[0])
    tx.many(INSERT_TASK, _task_rows(wid, spec, depends, tx.now))
    ids = dict(iter(tx.run(SUBMITTED_TASK_IDS, (wid,))))
    edges = ((ids[d], ids[t.name]) for i, t in enumerate(spec.tasks) for d in depends[i])
    tx.many(INSERT_DEPENDENCY, edges)
    skipped = set(dependents.skip_waiting(tx, wid)) if has_run_if else set()
    transitions.apply_counts(tx, alone=True)  # exact: nobody else sees the workflow yet
    transitions.settle(tx, wid)
    tx.wake = True
    ref = records.make_id("w", wid)
    tasks = tuple(
        records.submitted_task(ids[t.name], ref, t, depends[i], tx.now)
        for i, t in enumerate(spec.tasks)
    )
    if skipped:
        refs = {records.make_id("t", i) for i in skipped}
        tasks = tuple(_skipped(t, tx.now) if t.id in refs else t for t in tasks)
    return records.workflow_from_row(tx.one(WORKFLOW, (wid,)), tasks)


def submit_once(
    tx: Tx,
    spec: WorkflowSpec,
    depends: list[tuple[str, ...]],
    once: Idempotency,
    waits: Waits,
) -> Submission:
    """The key first: whoever takes it creates; a repeat reads the first workflow."""
    first = submission.take(tx, once)
    if first is not None:
        return Submission(workflow(tx, first, waits), created=False)
    created = submit(tx, spec, depends)
    submission.bind(tx, once, records.parse_id("w", created.id))
    return Submission(created, created=True)


def heartbeat(tx: Tx, aid: int) -> bool:
    """A running attempt's heartbeat (and its runner's); whether its command must stop."""
    row = tx.one(ATTEMPT_CANCEL_FACTS, (aid,))
    if row is None:
        raise records.not_found("a", aid)
    status, reason, task_state, runner = row
    if status == AttemptStatus.RUNNING:
        tx.run(BEAT_ATTEMPT, (tx.now, aid))
        runners.beat(tx, runner)
    return rules.cancel_asked(reason, task_state)


def append_output(tx: Tx, aid: int, text: str, offset: int | None) -> bool:
    """Add to the attempt's output; whether its command must stop."""
    row = tx.one(ATTEMPT_CANCEL_FACTS, (aid,))
    if row is None:
        raise records.not_found("a", aid)
    output.append(tx, aid, text, offset)
    return rules.cancel_asked(row[1], row[2])


def require_workflow(tx: Tx, wid: int) -> WorkflowState:
    """The workflow's state; ``NotFound`` if there is none."""
    row = tx.one(WORKFLOW_STATE, (wid,))
    if row is None:
        raise records.not_found("w", wid)
    return WorkflowState(row[0])


def delete(tx: Tx, wid: int) -> None:
    """Delete a workflow that is not running, and everything of it."""
    if require_workflow(tx, wid) == WorkflowState.RUNNING:
        raise Conflict(f"Workflow {records.make_id('w', wid)} is running: cancel it first")
    for name in DELETE_WORKFLOW:
        tx.run(name, (wid,))


def _task_rows(
    wid: int, spec: WorkflowSpec, depends: list[tuple[str, ...]], now: float
) -> Iterator[tuple[Any, ...]]:
    """INSERT_TASK's parameters for each task, in file order.

    Tasks without an ``env`` of their own share the workflow's mapping (see
    the loader), so each distinct one is encoded once, not once per task.
    """
    envs: dict[int, str] = {}
    for position, task in enumerate(spec.tasks):
        env = envs.get(id(task.env))
        if env is None:
            env = envs[id(task.env)] = _dump_env(task.env)
        needs = depends[position]
        yield (
            wid,
            position,
            task.name,
            records.dump_command(task.command),
            env,
            task.cwd,
            None if task.duration is None else float(task.duration),
            int(task.max_attempts),
            records.dump_labels(task.labels) if task.labels else None,
            int(task.priority),
            float(task.retry_delay or 0),
            records.dump_strings(needs),
            len(needs),
            now,
            _RUN_IF_TEXT[task.run_if],
            task.description,
            records.dump_mapping(task.matrix),
            task.matrix_of,
        )


#: ``run_if`` as stored, looked up rather than converted: 100,000 tasks pass through here.
_RUN_IF_TEXT = {r: r.value for r in RunIf}


def _skipped(task: Task, now: float) -> Task:
    """A task the submit itself skipped (an ``on_failure`` task with nothing to wait for)."""
    return replace(task, state=TaskState.COMPLETED, reason=TaskReason.SKIPPED, finished=now)


def _dump_env(env: Any) -> str:
    return json.dumps({str(k): str(v) for k, v in dict(env).items()})
