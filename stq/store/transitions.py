"""State changes made inside one open write transaction (SPEC section 3).

Each function takes a ``Tx`` (a connection already inside ``BEGIN``, the
dialect, and the transaction's ``now``) and changes rows; the caller commits.
Costs follow the events: completing a task touches its dependents only, a
failure walks only its downstream closure, and per-workflow counts are
maintained counters (recounted from an index only after bulk changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stq.model import AttemptReason, AttemptStatus, TaskReason, TaskState
from stq.store import rules
from stq.store.dialect import Dialect

#: Running attempts past their task's duration or their heartbeat timeout.
DUE_ATTEMPTS = """
SELECT id, task_id, deadline, heartbeat FROM attempt{by_deadline}
 WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?
UNION
SELECT id, task_id, deadline, heartbeat FROM attempt{by_heartbeat}
 WHERE status = 'running' AND heartbeat <= ?
"""
#: Cheap, read-only: is there anything to expire? (two small partial indexes)
ANY_DUE = """
SELECT EXISTS (SELECT 1 FROM attempt{by_deadline}
                WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?)
    OR EXISTS (SELECT 1 FROM attempt{by_heartbeat} WHERE status = 'running' AND heartbeat <= ?)
"""
#: Every task downstream of one task (transitive closure) still waiting: upstream_failed.
FAIL_DOWNSTREAM = """
WITH RECURSIVE downstream (id) AS (
    SELECT task_id FROM dependency WHERE upstream_id = ?
    UNION
    SELECT d.task_id FROM dependency d JOIN downstream ON d.upstream_id = downstream.id
)
UPDATE task SET state = 'failed', reason = 'upstream_failed', finished = ?
 WHERE id IN (SELECT t.id FROM downstream JOIN task t ON t.id = downstream.id
               WHERE t.state = 'todo')
"""
#: A task completed: each dependent has one unfinished dependency fewer.
RELEASE_DEPENDENTS = """
UPDATE task SET pending_deps = pending_deps - 1
 WHERE id IN (SELECT task_id FROM dependency WHERE upstream_id = ?)
"""
#: Per-state counters of one workflow, recounted from the (state, workflow_id) index.
RECOUNT = (
    "UPDATE workflow SET "
    + ", ".join(
        f"n_{s} = (SELECT count(*) FROM task WHERE state = '{s}' AND workflow_id = workflow.id)"
        for s in TaskState
    )
    + " WHERE id = ?"
)
TASK_FOR_FAILURE = """
SELECT workflow_id, state, max_attempts, attempts_used, budget_base, retry_delay
  FROM task WHERE id = ?
"""


@dataclass
class Tx:
    """An open transaction: run statements in the dialect's parameter style."""

    conn: Any
    dialect: Dialect
    now: float

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.sql(sql), params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.run(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.run(sql, params).fetchall()

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` for each row; an iterator keeps 100,000 rows out of memory."""
        self.conn.cursor().executemany(self.dialect.sql(sql), rows)


def _due_sql(tx: Tx, template: str) -> str:
    hint = tx.dialect.use_index
    return template.format(
        by_deadline=hint("attempt_running_deadline"),
        by_heartbeat=hint("attempt_running_heartbeat"),
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
        status, reason = verdict
        tx.run(
            "UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE id = ?",
            (status.value, reason.value, tx.now, attempt_id),
        )
        attempt_failed(tx, task_id)
    return len(due)


def shift(tx: Tx, workflow_id: int, old: TaskState, new: TaskState) -> None:
    """Move one task between the workflow's per-state counters."""
    if old != new:
        tx.run(
            f"UPDATE workflow SET n_{old.value} = n_{old.value} - 1, "
            f"n_{new.value} = n_{new.value} + 1 WHERE id = ?",
            (workflow_id,),
        )


def recount(tx: Tx, workflow_id: int) -> None:
    tx.run(RECOUNT, (workflow_id,))


def settle(tx: Tx, workflow_id: int) -> None:
    """Give the workflow the state its counts imply; stamp ``finished`` when it ends."""
    row = tx.one(
        "SELECT state, n_todo, n_in_process, n_completed, n_failed FROM workflow WHERE id = ?",
        (workflow_id,),
    )
    counts = {s.value: n for s, n in zip(TaskState, row[1:], strict=True)}
    new = rules.workflow_state(counts)
    if new.value != row[0]:
        finished = None if new == new.RUNNING else tx.now
        tx.run(
            "UPDATE workflow SET state = ?, finished = ? WHERE id = ?",
            (new.value, finished, workflow_id),
        )


def attempt_failed(tx: Tx, task_id: int) -> None:
    """The task's running attempt failed: back to todo after retry_delay, or failed."""
    workflow_id, state, max_attempts, used, base, retry_delay = tx.one(
        TASK_FOR_FAILURE, (task_id,)
    )
    if state != TaskState.IN_PROCESS:
        return  # terminal already (completed by another attempt, or cancelled)
    new = rules.state_after_failure(max_attempts, used, base)
    if new == TaskState.TODO:
        tx.run(
            "UPDATE task SET state = 'todo', ready_at = ? WHERE id = ?",
            (tx.now + retry_delay, task_id),
        )
        shift(tx, workflow_id, TaskState.IN_PROCESS, TaskState.TODO)
        return
    tx.run(
        "UPDATE task SET state = 'failed', reason = NULL, finished = ? WHERE id = ?",
        (tx.now, task_id),
    )
    shift(tx, workflow_id, TaskState.IN_PROCESS, TaskState.FAILED)
    if tx.run(FAIL_DOWNSTREAM, (task_id, tx.now)).rowcount:
        recount(tx, workflow_id)
    settle(tx, workflow_id)


def complete(tx: Tx, task_id: int, workflow_id: int, old: TaskState) -> None:
    """The task completed: its dependents have one unfinished dependency fewer."""
    tx.run(
        "UPDATE task SET state = 'completed', reason = NULL, finished = ? WHERE id = ?",
        (tx.now, task_id),
    )
    shift(tx, workflow_id, old, TaskState.COMPLETED)
    tx.run(RELEASE_DEPENDENTS, (task_id,))
    settle(tx, workflow_id)


def cancel(tx: Tx, workflow_id: int) -> None:
    """Fail every non-terminal task (reason cancelled) and its running attempt."""
    tx.run(
        "UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE status = 'running' "
        "AND task_id IN (SELECT id FROM task WHERE state = 'in_process' AND workflow_id = ?)",
        (AttemptStatus.FAILED.value, AttemptReason.CANCELLED.value, tx.now, workflow_id),
    )
    tx.run(
        "UPDATE task SET state = 'failed', reason = ?, finished = ? "
        "WHERE workflow_id = ? AND state IN ('todo', 'in_process')",
        (TaskReason.CANCELLED.value, tx.now, workflow_id),
    )
    recount(tx, workflow_id)
    settle(tx, workflow_id)


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


def retry(tx: Tx, workflow_id: int) -> None:
    if tx.run(RETRY, (workflow_id,)).rowcount:
        recount(tx, workflow_id)
        settle(tx, workflow_id)
