"""State changes made inside one open write transaction (docs/semantics.md).

Each function takes a ``Tx`` (a connection already inside ``BEGIN``, the
dialect, and the transaction's ``now``) and changes rows; the caller commits.
Costs follow the events: completing a task touches its dependents only, a
failure walks only its downstream closure (``dependents`` says how a task's
end reaches the tasks waiting on it, ``run_if`` included), and per-workflow
counts are maintained counters.

Rows are locked in one order in every transaction (attempt, then task, then
counters; a completion's dependents in id order), so transactions that run
side by side on PostgreSQL rarely deadlock (the store retries the few that
do: each costs PostgreSQL's ``deadlock_timeout``, 1 s by default).
Counter moves are collected on the ``Tx`` and added, last, to the
transaction's own shard of the workflow's counters (``workflow_count``), so
transactions on one workflow never queue for one row until their commits
are flushed. The workflow's state follows from its counts (``settle``):
inline where writes run one at a time (SQLite); on PostgreSQL two
transactions finishing a workflow's last tasks side by side cannot see each
other's moves, so each one that ended a task checks again after its commit
(``SqlStore``), and the later one sees both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stq.model import AttemptReason, AttemptStatus, TaskReason, TaskState, WorkflowState
from stq.store import dependents, rules
from stq.store.statements import named
from stq.store.tx import Tx, shift

DUE_ATTEMPTS = named("due_attempts")
ANY_DUE = named("any_due")
EXPIRE_ATTEMPT = named("expire_attempt")
ADD_COUNTS = named("add_counts")
#: A workflow's state, counts and id (``implied_state`` reads them); the same locked,
#: and for every running workflow.
STATE_AND_COUNTS = named("state_and_counts")
STATE_AND_COUNTS_LOCKED = named("state_and_counts_locked")
RUNNING_STATES_AND_COUNTS = named("running_states_and_counts")
SETTLE_WORKFLOW = named("settle_workflow")
TASK_FOR_FAILURE = named("task_for_failure")
TASK_TO_RETRY = named("task_to_retry")
TASK_FAILED = named("task_failed")
TASK_COMPLETED = named("task_completed")
CANCEL_ATTEMPTS = named("cancel_attempts")
CANCEL_TASKS = named("cancel_tasks")
WORKFLOW_HAS_RUN_IF = named("workflow_has_run_if")
RETRY_FAILED = named("retry_failed")
RETRY_FAILED_RETURNING = named("retry_failed_returning")
RETRY_DOWNSTREAM = named("retry_downstream")
RECOUNT = named("recount")


def any_due(tx: Tx, heartbeat_timeout: float) -> bool:
    """Cheap and read-only: is any running attempt past its deadline or heartbeat timeout?"""
    return bool(tx.one(ANY_DUE, (tx.now, tx.now - heartbeat_timeout))[0])


def expire_due(tx: Tx, heartbeat_timeout: float) -> int:
    """End every running attempt past its duration or heartbeat timeout; how many."""
    due = tx.all(DUE_ATTEMPTS, (tx.now, tx.now - heartbeat_timeout))
    for attempt_id, task_id, deadline, heartbeat in due:
        verdict = rules.expiry(deadline, heartbeat, tx.now, heartbeat_timeout)
        if verdict is None:  # cannot happen with the query above; keep the rule the authority
            continue
        status, reason, ended = verdict
        tx.run(EXPIRE_ATTEMPT, (status.value, reason.value, ended, attempt_id))
        attempt_failed(tx, task_id, ended)
    return len(due)


def apply_counts(tx: Tx, alone: bool = False) -> None:
    """Add the collected counter moves to this transaction's shard; settle or note each.

    Called last in every write transaction, so a shard row is locked only
    from here to the commit. Only moves into ``completed``, ``failed`` or back
    to ``todo`` can change a workflow's state (a claim cannot), and a workflow
    in which the transaction started an attempt (a busy runner's result and
    next claim) is running at the commit: no transaction starts an attempt and
    then ends it. Where writes run one at a time (SQLite, or a transaction that
    runs ``alone``) the counts read back are exact and the workflow is settled
    now; otherwise its state and counts are read again just after the commit
    (``tx.after``, sent in the commit's round trip), for the store to settle it
    if they say so.
    """
    exact = alone or tx.dialect.serial_writes
    for workflow_id in sorted(tx.moves):
        moves = tx.moves[workflow_id]
        if any(moves.values()):
            counts = (workflow_id, *(moves[s] for s in TaskState))
            if exact:
                tx.run(ADD_COUNTS, counts)
            else:
                tx.defer(ADD_COUNTS, counts)
        if not any(moves[s] > 0 for s in _STATE_CHANGING):
            continue
        if workflow_id in tx.started:
            continue  # running at the commit: the attempt just started is in process
        if exact:
            settle(tx, workflow_id)
        else:
            tx.after.append((STATE_AND_COUNTS, (workflow_id,)))
    tx.moves.clear()


#: Counter moves into these states are the ones that can change a workflow's state.
_STATE_CHANGING = (TaskState.COMPLETED, TaskState.FAILED, TaskState.TODO)


def implied_state(row: Sequence[Any]) -> WorkflowState:
    """The state a ``STATE_AND_COUNTS`` row's counts imply."""
    counts = row[1 : 1 + len(TaskState)]
    return rules.workflow_state({s.value: n for s, n in zip(TaskState, counts, strict=True)})


def settle(tx: Tx, workflow_id: int) -> None:
    """Give the workflow the state its counts imply (stamping ``finished``).

    Safe in any transaction: counts that show every task ended are true
    whoever else is running (only a retry, which runs alone, brings a task
    back), and counts that do not leave the state to a later check.
    """
    row = tx.one(STATE_AND_COUNTS_LOCKED, (workflow_id,))
    new = implied_state(row)
    if new.value != row[0]:
        finished = None if new == new.RUNNING else tx.now
        tx.run(SETTLE_WORKFLOW, (new.value, finished, workflow_id, row[0]))


def attempt_failed(tx: Tx, task_id: int, at: float | None = None) -> TaskState:
    """The running attempt failed at ``at`` (default now): todo after retry_delay, or failed.

    Returns the task's state afterwards.
    """
    at = tx.now if at is None else at
    workflow_id, state, max_attempts, used, base, retry_delay, has_run_if = tx.one(
        TASK_FOR_FAILURE, (task_id,)
    )
    if state != TaskState.IN_PROCESS:
        return TaskState(state)  # terminal already (completed by another attempt, or cancelled)
    new = rules.state_after_failure(max_attempts, used, base)
    if new == TaskState.TODO:
        tx.run(TASK_TO_RETRY, (at + retry_delay, task_id))
        shift(tx, workflow_id, TaskState.IN_PROCESS, TaskState.TODO)
        tx.wake = True
        return new
    tx.run(TASK_FAILED, (at, task_id))
    shift(tx, workflow_id, TaskState.IN_PROCESS, TaskState.FAILED)
    dependents.failed(tx, workflow_id, task_id, at, bool(has_run_if))
    return new


def complete(
    tx: Tx,
    task_id: int,
    workflow_id: int,
    old: TaskState,
    has_dependents: bool,
    has_run_if: bool = False,
) -> None:
    """The task completed: its dependents have one unfinished dependency fewer.

    Whether it has dependents, and whether its workflow has ``run_if`` tasks,
    come from the report's first query, so a task without dependents costs
    one statement here.
    """
    tx.run(TASK_COMPLETED, (tx.now, task_id))
    shift(tx, workflow_id, old, TaskState.COMPLETED)
    if has_dependents:
        dependents.completed(tx, workflow_id, task_id, has_run_if)


def cancel(tx: Tx, workflow_id: int) -> None:
    """Fail every non-terminal task (reason cancelled) and its running attempt."""
    tx.run(
        CANCEL_ATTEMPTS,
        (AttemptStatus.FAILED.value, AttemptReason.CANCELLED.value, tx.now, workflow_id),
    )
    for old in (TaskState.TODO, TaskState.IN_PROCESS):
        cancelled = tx.count(
            CANCEL_TASKS, (TaskReason.CANCELLED.value, tx.now, workflow_id, old.value)
        )
        shift(tx, workflow_id, old, TaskState.FAILED, cancelled)


def retry(tx: Tx, workflow_id: int) -> None:
    """Every failed task, and with ``run_if`` tasks every task ended downstream of one, to todo.

    Runs alone (``SqlStore``): no other write changes the workflow meanwhile.
    In a workflow without ``run_if`` tasks nothing downstream of a failed
    task ever ran, and waiting tasks had no failed dependency, so the failed
    tasks' own counts are all that change.
    """
    has_run_if = bool(tx.one(WORKFLOW_HAS_RUN_IF, (workflow_id,))[0])
    if not has_run_if:
        retried = tx.count(RETRY_FAILED, (workflow_id,))
        shift(tx, workflow_id, TaskState.FAILED, TaskState.TODO, retried)
        if retried:
            tx.wake = True
        return
    again = [row[0] for row in tx.all(RETRY_DOWNSTREAM, (workflow_id,))]
    shift(tx, workflow_id, TaskState.COMPLETED, TaskState.TODO, len(again))
    retried = [row[0] for row in tx.all(RETRY_FAILED_RETURNING, (workflow_id,))]
    shift(tx, workflow_id, TaskState.FAILED, TaskState.TODO, len(retried))
    if again or retried:
        tx.wake = True
        ids = tx.dialect.ids_param([*again, *retried])
        rows = tx.all(RECOUNT, (ids, ids))
        dependents.recounted(tx, workflow_id, rows)
