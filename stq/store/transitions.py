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
from stq.store import dependents, records, rules
from stq.store.tx import Tx, inline, shift

#: Running attempts past their task's duration or their heartbeat timeout, locked
#: (PostgreSQL: rows another server is expiring right now are skipped, not waited for).
DUE_ATTEMPTS = """
SELECT id, task_id, deadline, heartbeat FROM attempt
 WHERE status = 'running' AND id IN (
       SELECT id FROM attempt{by_deadline}
        WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?
       UNION
       SELECT id FROM attempt{by_heartbeat} WHERE status = 'running' AND heartbeat <= ?)
 ORDER BY id{skip_locked}
"""
#: Cheap, read-only: is there anything to expire? (two small partial indexes)
ANY_DUE = """
SELECT EXISTS (SELECT 1 FROM attempt{by_deadline}
                WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?)
    OR EXISTS (SELECT 1 FROM attempt{by_heartbeat} WHERE status = 'running' AND heartbeat <= ?)
"""
#: Add the transaction's counter moves to its shard of the workflow's counters.
ADD_COUNTS = (
    "INSERT INTO workflow_count (workflow_id, shard, "
    + ", ".join(f"n_{s}" for s in TaskState)
    + ") VALUES (?, {shard}, "
    + ", ".join("?" for _ in TaskState)
    + ") ON CONFLICT (workflow_id, shard) DO UPDATE SET "
    + ", ".join(f"n_{s} = workflow_count.n_{s} + excluded.n_{s}" for s in TaskState)
)
#: A workflow's state, counts and id; and the same for every running workflow.
STATE_AND_COUNTS = f"SELECT state, {records.COUNT_COLUMNS}, id FROM workflow WHERE id = ?"
RUNNING_STATES_AND_COUNTS = (
    f"SELECT state, {records.COUNT_COLUMNS}, id FROM workflow WHERE state = 'running'"
)
#: A failed attempt's task, locked; and whether its workflow has ``run_if`` tasks
#: (read in a subquery, so the workflow row is not locked with it).
TASK_FOR_FAILURE = """
SELECT workflow_id, state, max_attempts, attempts_used, budget_base, retry_delay,
       (SELECT w.has_run_if FROM workflow w WHERE w.id = task.workflow_id)
  FROM task WHERE id = ?{for_update}
"""


def _due_sql(tx: Tx, template: str) -> str:
    hint = tx.dialect.use_index
    return template.format(
        by_deadline=hint("attempt_running_deadline"),
        by_heartbeat=hint("attempt_running_heartbeat"),
        skip_locked=tx.dialect.skip_locked,
    )


def any_due(tx: Tx, heartbeat_timeout: float) -> bool:
    """Cheap and read-only: is any running attempt past its deadline or heartbeat timeout?"""
    return bool(tx.one(_due_sql(tx, ANY_DUE), (tx.now, tx.now - heartbeat_timeout))[0])


def expire_due(tx: Tx, heartbeat_timeout: float) -> int:
    """End every running attempt past its duration or heartbeat timeout; how many."""
    due = tx.all(_due_sql(tx, DUE_ATTEMPTS), (tx.now, tx.now - heartbeat_timeout))
    for attempt_id, task_id, deadline, heartbeat in due:
        verdict = rules.expiry(deadline, heartbeat, tx.now, heartbeat_timeout)
        if verdict is None:  # cannot happen with the query above; keep the rule the authority
            continue
        status, reason, ended = verdict
        tx.run(
            "UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE id = ?",
            (status.value, reason.value, ended, attempt_id),
        )
        attempt_failed(tx, task_id, ended)
    return len(due)


def apply_counts(tx: Tx, alone: bool = False) -> None:
    """Add the collected counter moves to this transaction's shard; settle or note each.

    Called last in every write transaction, so a shard row is locked only
    from here to the commit. Only moves into ``completed``, ``failed`` or back
    to ``todo`` can change a workflow's state (a claim cannot). Where writes
    run one at a time (SQLite, or a transaction that runs ``alone``) the
    counts read back are exact and the workflow is settled now; otherwise its
    state and counts are read again just after the commit (``tx.after``, a
    literal statement sent in the commit's round trip), for the store to
    settle it if they say so.
    """
    exact = alone or tx.dialect.serial_writes
    for workflow_id in sorted(tx.moves):
        moves = tx.moves[workflow_id]
        if any(moves.values()):
            add = ADD_COUNTS.format(shard=tx.dialect.count_shard)
            counts = (workflow_id, *(moves[s] for s in TaskState))
            if exact:
                tx.run(add, counts)
            else:
                tx.defer(add, counts)
        if not any(moves[s] > 0 for s in _STATE_CHANGING):
            continue
        if exact:
            settle(tx, workflow_id)
        else:
            tx.after.append(inline(STATE_AND_COUNTS, (workflow_id,)))
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
    row = tx.one(STATE_AND_COUNTS + tx.dialect.for_update, (workflow_id,))
    new = implied_state(row)
    if new.value != row[0]:
        tx.run(
            "UPDATE workflow SET state = ?, finished = ? WHERE id = ? AND state = ?",
            (new.value, None if new == new.RUNNING else tx.now, workflow_id, row[0]),
        )


def attempt_failed(tx: Tx, task_id: int, at: float | None = None) -> TaskState:
    """The running attempt failed at ``at`` (default now): todo after retry_delay, or failed.

    Returns the task's state afterwards.
    """
    at = tx.now if at is None else at
    workflow_id, state, max_attempts, used, base, retry_delay, has_run_if = tx.one(
        TASK_FOR_FAILURE.format(for_update=tx.dialect.for_update), (task_id,)
    )
    if state != TaskState.IN_PROCESS:
        return TaskState(state)  # terminal already (completed by another attempt, or cancelled)
    new = rules.state_after_failure(max_attempts, used, base)
    if new == TaskState.TODO:
        tx.run(
            "UPDATE task SET state = 'todo', ready_at = ? WHERE id = ?",
            (at + retry_delay, task_id),
        )
        shift(tx, workflow_id, TaskState.IN_PROCESS, TaskState.TODO)
        tx.wake = True
        return new
    tx.run(
        "UPDATE task SET state = 'failed', reason = NULL, finished = ? WHERE id = ?",
        (at, task_id),
    )
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
    tx.run(
        "UPDATE task SET state = 'completed', reason = NULL, finished = ? WHERE id = ?",
        (tx.now, task_id),
    )
    shift(tx, workflow_id, old, TaskState.COMPLETED)
    if has_dependents:
        dependents.completed(tx, workflow_id, task_id, has_run_if)


def cancel(tx: Tx, workflow_id: int) -> None:
    """Fail every non-terminal task (reason cancelled) and its running attempt."""
    tx.run(
        "UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE status = 'running' "
        "AND task_id IN (SELECT id FROM task WHERE state = 'in_process' AND workflow_id = ?)",
        (AttemptStatus.FAILED.value, AttemptReason.CANCELLED.value, tx.now, workflow_id),
    )
    for old in (TaskState.TODO, TaskState.IN_PROCESS):
        cancelled = tx.count(
            "UPDATE task SET state = 'failed', reason = ?, finished = ? "
            "WHERE workflow_id = ? AND state = ?",
            (TaskReason.CANCELLED.value, tx.now, workflow_id, old.value),
        )
        shift(tx, workflow_id, old, TaskState.FAILED, cancelled)


#: Failed tasks back to todo with a fresh budget; the unfinished-dependency count
#: is recomputed (failed and todo upstreams both count as unfinished, so the
#: order in which rows are updated does not matter).
RETRY = """
UPDATE task SET state = 'todo', reason = NULL, finished = NULL, ready_at = 0,
       budget_base = attempts_used,
       pending_deps = (SELECT count(*) FROM dependency d JOIN task u ON u.id = d.upstream_id
                        WHERE d.task_id = task.id AND u.state <> 'completed')
 WHERE workflow_id = ? AND state = 'failed'
"""
#: Before ``RETRY``, with ``run_if`` tasks: every completed task downstream of a failed
#: one (through any task) back to todo with a fresh budget too, so ``on_failure`` and
#: ``always`` tasks (and what followed them) run or are skipped as the new outcome decides.
RETRY_DOWNSTREAM = """
UPDATE task SET state = 'todo', reason = NULL, finished = NULL, ready_at = 0,
       budget_base = attempts_used
 WHERE state = 'completed' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT d.task_id FROM task f JOIN dependency d ON d.upstream_id = f.id
            WHERE f.workflow_id = ? AND f.state = 'failed'
           UNION
           SELECT d.task_id FROM dependency d JOIN downstream ON d.upstream_id = downstream.id
       )
       SELECT id FROM downstream)
RETURNING id
"""
#: After ``RETRY``, with ``run_if`` tasks: the dependency counts of the tasks retried
#: ({ids}) and of their dependents, the only ones whose dependencies changed, from
#: their dependencies' states. No task of the workflow is failed any more.
RECOUNT = """
UPDATE task SET failed_deps = 0,
       pending_deps = (SELECT count(*) FROM dependency d JOIN task u ON u.id = d.upstream_id
                        WHERE d.task_id = task.id AND u.state <> 'completed')
 WHERE id IN ({ids} UNION SELECT d.task_id FROM dependency d WHERE d.upstream_id IN ({ids}))
RETURNING id, state, run_if, pending_deps, failed_deps
"""


def retry(tx: Tx, workflow_id: int) -> None:
    """Every failed task, and with ``run_if`` tasks every task ended downstream of one, to todo.

    Runs alone (``SqlStore``): no other write changes the workflow meanwhile.
    In a workflow without ``run_if`` tasks nothing downstream of a failed
    task ever ran, and waiting tasks had no failed dependency, so the failed
    tasks' own counts are all that change.
    """
    has_run_if = bool(tx.one("SELECT has_run_if FROM workflow WHERE id = ?", (workflow_id,))[0])
    if not has_run_if:
        retried = tx.count(RETRY, (workflow_id,))
        shift(tx, workflow_id, TaskState.FAILED, TaskState.TODO, retried)
        if retried:
            tx.wake = True
        return
    again = [row[0] for row in tx.all(RETRY_DOWNSTREAM, (workflow_id,))]
    shift(tx, workflow_id, TaskState.COMPLETED, TaskState.TODO, len(again))
    retried = [row[0] for row in tx.all(RETRY.rstrip() + "\nRETURNING id", (workflow_id,))]
    shift(tx, workflow_id, TaskState.FAILED, TaskState.TODO, len(retried))
    if again or retried:
        tx.wake = True
        ids = tx.dialect.ids_param([*again, *retried])
        rows = tx.all(RECOUNT.format(ids=tx.dialect.ids_query), (ids, ids))
        dependents.recounted(tx, workflow_id, rows)
