"""A runner's result for one attempt, and the sanity check of a submitted spec.

A result is accepted once: the answer given is stored on the attempt, and a
repeat of the same report gets that answer back unchanged (and, when it asked
for the runner's next attempt, the same one: ``claim.claimed_after``). A success counts
even after the server presumed the attempt timed out or lost, as long as the
task is not terminal yet; a failure reported after such a presumption changes
nothing (the attempt already counted as failed).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from stq.errors import Conflict, Problem, WorkflowInvalid
from stq.model import (
    AttemptReason,
    AttemptStatus,
    Report,
    ResultAck,
    TaskReason,
    TaskState,
    WorkflowSpec,
)
from stq.store import output, records, rules, transitions
from stq.store.statements import named
from stq.store.tx import Tx

ATTEMPT_FOR_REPORT = named("attempt_for_report")
ATTEMPT_COMPLETED = named("attempt_completed")
ATTEMPT_FAILED = named("attempt_failed")
ATTEMPT_FAILED_LATE = named("attempt_failed_late")


class Outcome(NamedTuple):
    """What one result did: the answer, whether it repeated an earlier one, and why it
    was refused (its workflow was cancelled: nothing but its output was kept)."""

    ack: ResultAck | None
    repeat: bool = False
    refused: str | None = None

    def answer(self) -> ResultAck:
        """The answer to give, after the transaction committed; ``Conflict`` if refused."""
        if self.refused is not None or self.ack is None:
            raise Conflict(self.refused or "result not recorded")
        return self.ack


def report(tx: Tx, attempt_id: int, result: Report) -> Outcome:
    """Apply one result inside the open transaction.

    One query reads everything the rules need, and the answer is worked out
    here and stored with the attempt's own update rather than read back: a
    result costs a few statements, each one round trip on PostgreSQL. A
    refused result still leaves its output on the attempt (nothing a command
    printed is dropped), so it is not an exception here: the caller raises
    once the output is committed.
    """
    row = tx.one(ATTEMPT_FOR_REPORT, (attempt_id,))
    if row is None:
        raise records.not_found("a", attempt_id)
    status, reason, ack_attempt, ack_task, task_id, workflow_id, task_state, task_reason = row[:8]
    if ack_attempt is not None:
        return Outcome(ResultAck(AttemptStatus(ack_attempt), TaskState(ack_task)), repeat=True)
    if result.output:
        output.append(tx, attempt_id, result.output, result.output_offset, gap_ok=True)
    if reason == AttemptReason.CANCELLED or task_reason == TaskReason.CANCELLED:
        message = "its workflow was cancelled; the result was not recorded (its output was)"
        return Outcome(None, refused=f"{records.make_id('a', attempt_id)}: {message}")
    task = _Task(task_id, workflow_id, TaskState(task_state), bool(row[8]), bool(row[9]))
    if AttemptStatus(result.status) == AttemptStatus.COMPLETED:
        return Outcome(_completed(tx, attempt_id, task, result))
    return Outcome(_failed(tx, attempt_id, task, AttemptStatus(status), result))


class _Task(NamedTuple):
    """The reported attempt's task as the report found it."""

    id: int
    workflow_id: int
    state: TaskState
    has_dependents: bool
    has_run_if: bool


def _completed(tx: Tx, attempt_id: int, task: _Task, result: Report) -> ResultAck:
    """Late success counts: the attempt becomes completed whatever was presumed."""
    ack = ResultAck(
        AttemptStatus.COMPLETED, task.state if task.state.terminal else TaskState.COMPLETED
    )
    tx.run(
        ATTEMPT_COMPLETED,
        (
            result.exit_code if result.exit_code is not None else 0,
            tx.now,
            ack.attempt_status.value,
            ack.task_state.value,
            attempt_id,
        ),
    )
    if not task.state.terminal:
        transitions.complete(
            tx, task.id, task.workflow_id, task.state, task.has_dependents, task.has_run_if
        )
    return ack


def _failed(
    tx: Tx, attempt_id: int, task: _Task, status: AttemptStatus, result: Report
) -> ResultAck:
    if status != AttemptStatus.RUNNING:  # already presumed timed out or lost: keep that verdict
        ack = ResultAck(status, task.state)
        tx.run(
            ATTEMPT_FAILED_LATE,
            (result.exit_code, ack.attempt_status.value, ack.task_state.value, attempt_id),
        )
        return ack
    ack = ResultAck(AttemptStatus.FAILED, transitions.attempt_failed(tx, task.id))
    tx.run(
        ATTEMPT_FAILED,
        (
            rules.failure_reason(result.exit_code, result.message),
            result.exit_code,
            tx.now,
            ack.attempt_status.value,
            ack.task_state.value,
            attempt_id,
        ),
    )
    return ack


def check_spec(spec: WorkflowSpec) -> list[tuple[str, ...]]:
    """Each task's distinct dependencies; ``WorkflowInvalid`` for what the loader rejects.

    The loader already rejects these; the store checks again because it is also
    called directly (tests, benchmarks) and must never store a broken graph.
    """
    seen = Counter(t.name for t in spec.tasks)
    known = set(seen)
    problems = [Problem(f"duplicate task name {n!r}") for n, k in seen.items() if k > 1]
    depends = []
    for task in spec.tasks:
        deps = tuple(dict.fromkeys(task.depends_on))
        problems += [
            Problem(f"task {task.name!r} depends on unknown task {d!r}", f"/tasks/{task.name}")
            for d in deps
            if d not in known or d == task.name
        ]
        depends.append(deps)
    if problems:
        raise WorkflowInvalid(problems)
    return depends
