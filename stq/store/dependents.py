"""How a task's end reaches the tasks that depend on it (docs/semantics.md, ``run_if``).

Each task counts its dependencies not yet terminal (``pending_deps``) and
those that failed (``failed_deps``). A ``todo`` task with no pending
dependency is claimable: the claim query and its partial indexes look at
nothing else. So every change here keeps one rule: an ``on_failure`` task
is never left ``todo`` with no pending and no failed dependency. The same
transaction completes it with reason ``skipped`` (no attempt), and that
skip is a completion that releases its own dependents, wave after wave.

- A task completed: each waiting dependent has one pending dependency fewer.
- A task failed: its ``on_success`` dependents, and theirs, become
  ``upstream_failed``; the walk stops at ``on_failure`` and ``always``
  tasks. Every such task waiting on one of the tasks that just failed has
  as many pending dependencies fewer, and failed ones more.
- Most workflows have no ``on_failure`` or ``always`` task
  (``workflow.has_run_if = 0``): there a completion is one UPDATE with
  nothing read back, and a failure one UPDATE of its downstream, as before
  ``run_if`` existed.

On PostgreSQL two dependencies of one task may end side by side: the
dependent's row lock orders the two updates, and whether it became
claimable or skipped is decided on the values the UPDATE returns, which
include what the other transaction committed. A result's own completion
locks its dependents in id order, as everywhere; a wave of many tasks (a
failure's fan-out, a wave of skips) is one statement that locks them in the
order the database joins them, and the rare deadlock that may cause is run
again by the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stq.model import RunIf, TaskState
from stq.store.tx import Tx, shift

#: Every task downstream of one task (transitive closure) still waiting, in a workflow
#: without ``run_if`` tasks: upstream_failed. (UPDATE first, the CTE inside: see
#: ``Tx.count``.)
FAIL_DOWNSTREAM = """
UPDATE task SET state = 'failed', reason = 'upstream_failed', finished = ?
 WHERE state = 'todo' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT task_id FROM dependency WHERE upstream_id = ?
           UNION
           SELECT d.task_id FROM dependency d JOIN downstream ON d.upstream_id = downstream.id
       )
       SELECT id FROM downstream)
"""
#: Whether the task at the far end of edge ``d`` waits and runs only on success, read
#: through its primary key. (A join instead lets PostgreSQL drive the recursion from
#: every waiting task when its statistics predate a big submit: minutes, not ms.)
_WAITS_ON_SUCCESS = (
    "(SELECT t.state = 'todo' AND t.run_if = 'on_success' FROM task t WHERE t.id = d.task_id)"
)
#: The same with ``run_if`` tasks: the walk goes through waiting ``on_success`` tasks only,
#: and the ids of the tasks it failed are read back (``RETURNING``) for ``release``.
FAIL_ON_SUCCESS_DOWNSTREAM = f"""
UPDATE task SET state = 'failed', reason = 'upstream_failed', finished = ?
 WHERE state = 'todo' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT d.task_id FROM dependency d WHERE d.upstream_id = ? AND {_WAITS_ON_SUCCESS}
           UNION
           SELECT d.task_id FROM downstream JOIN dependency d ON d.upstream_id = downstream.id
            WHERE {_WAITS_ON_SUCCESS}
       )
       SELECT id FROM downstream)
RETURNING id
"""
#: A task completed in a workflow without ``run_if`` tasks: each dependent has one
#: pending dependency fewer. The dependents are locked in id order first (PostgreSQL):
#: two results releasing overlapping dependents each locked them in its own scan
#: order, deadlocked, and waited out PostgreSQL's 1 s deadlock_timeout before one
#: was run again.
RELEASE_DEPENDENTS = """
UPDATE task SET pending_deps = pending_deps - 1
 WHERE id IN (SELECT t.id FROM dependency d JOIN task t ON t.id = d.task_id
               WHERE d.upstream_id = ? ORDER BY t.id{for_update})
"""
#: The same for a workflow with ``run_if`` tasks, with each dependent's counts read
#: back: they decide what it became.
RELEASE_ONE = (
    RELEASE_DEPENDENTS.rstrip() + "\nRETURNING id, state, run_if, pending_deps, failed_deps\n"
)
#: The dependents of many tasks that just ended ({ids}: a skip wave, or a failure and
#: the tasks it made upstream_failed), in one statement: as many pending dependencies
#: fewer (and, after failures, failed ones more) as they have edges from those tasks.
#: Nothing here names ``state``: an index on it would tempt PostgreSQL into scanning
#: every waiting task; ``release`` looks at the state returned instead.
RELEASE_MANY = """
UPDATE task SET pending_deps = task.pending_deps - e.n{failed}
  FROM (SELECT d.task_id, count(*) AS n FROM dependency d
         WHERE d.upstream_id IN ({ids}) GROUP BY d.task_id) AS e
 WHERE task.id = e.task_id{conditional}
RETURNING task.id, task.state, task.run_if, task.pending_deps, task.failed_deps
"""
#: Waiting ``on_failure`` tasks ({ids}), which this transaction holds: skipped.
SKIP = "UPDATE task SET state = 'completed', reason = 'skipped', finished = ? WHERE id IN ({ids})"
#: ``on_failure`` tasks of a workflow just submitted with nothing to wait for.
READY_TO_SKIP = (
    "SELECT id FROM task WHERE workflow_id = ? AND state = 'todo' AND run_if = 'on_failure' "
    "AND pending_deps = 0 AND failed_deps = 0 ORDER BY id"
)


def completed(tx: Tx, workflow_id: int, task_id: int, has_run_if: bool) -> None:
    """``task_id`` (which has dependents) completed: release them, waking waiting claims."""
    if has_run_if:
        release(tx, workflow_id, [task_id])
        return
    tx.run(RELEASE_DEPENDENTS.format(for_update=tx.dialect.for_update), (task_id,))
    tx.wake = True  # one may be claimable now; nothing read back to know which


def failed(tx: Tx, workflow_id: int, task_id: int, at: float, has_run_if: bool) -> None:
    """``task_id`` failed for good at ``at``: its downstream as the module docstring says."""
    if not has_run_if:
        downstream = tx.count(FAIL_DOWNSTREAM, (at, task_id))
        shift(tx, workflow_id, TaskState.TODO, TaskState.FAILED, downstream)
        return
    ended = [row[0] for row in tx.all(FAIL_ON_SUCCESS_DOWNSTREAM, (at, task_id))]
    shift(tx, workflow_id, TaskState.TODO, TaskState.FAILED, len(ended))
    release(tx, workflow_id, [task_id, *ended], failed=True)


def release(tx: Tx, workflow_id: int, ended: Sequence[int], failed: bool = False) -> list[int]:
    """Tasks ``ended`` just became terminal (``failed``, else completed): update their dependents.

    A waiting dependent left with no pending dependency is claimable (waiting
    claims are woken), or skipped if it is ``on_failure`` and none failed;
    each wave of skips is released in turn. Returns the ids of the tasks skipped.
    """
    skipped: list[int] = []
    while ended:
        ended = _skip(tx, workflow_id, _to_skip(tx, _released(tx, ended, failed)))
        failed = False
        skipped += ended
    return skipped


def recounted(tx: Tx, workflow_id: int, rows: Sequence[Any]) -> list[int]:
    """Tasks whose counts were just set anew (a retry): as ``release`` does with its own.

    ``rows``: (id, state, run_if, pending_deps, failed_deps) of each; returns the ids skipped.
    """
    ready = _skip(tx, workflow_id, _to_skip(tx, rows))
    return ready + release(tx, workflow_id, ready)


def skip_waiting(tx: Tx, workflow_id: int) -> list[int]:
    """Skip the workflow's ``on_failure`` tasks without dependencies, and what follows.

    After a submit; returns the ids skipped.
    """
    ready = _skip(tx, workflow_id, [row[0] for row in tx.all(READY_TO_SKIP, (workflow_id,))])
    return ready + release(tx, workflow_id, ready)


def _to_skip(tx: Tx, rows: Sequence[Any]) -> list[int]:
    """Of (id, state, run_if, pending_deps, failed_deps) rows, the waiting tasks to skip.

    The others left with nothing to wait for are claimable: waiting claims are woken.
    """
    skips = []
    for task_id, state, run_if, pending, failed_deps in rows:
        if pending or state != TaskState.TODO:
            continue
        if run_if == RunIf.ON_FAILURE and not failed_deps:
            skips.append(task_id)
        else:
            tx.wake = True
    return skips


def _released(tx: Tx, ended: Sequence[int], failed: bool) -> list[Any]:
    """Update the dependents of ``ended``; (id, state, run_if, pending, failed) of each."""
    if len(ended) == 1 and not failed:  # a result's own completion: the common case
        return tx.all(RELEASE_ONE.format(for_update=tx.dialect.for_update), (ended[0],))
    sql = RELEASE_MANY.format(
        failed=", failed_deps = task.failed_deps + e.n" if failed else "",
        ids=tx.dialect.ids_query,
        conditional=f" AND task.run_if <> '{RunIf.ON_SUCCESS.value}'" if failed else "",
    )
    return tx.all(sql, (tx.dialect.ids_param(ended),))


def _skip(tx: Tx, workflow_id: int, ids: list[int]) -> list[int]:
    """Complete ``ids`` (waiting ``on_failure`` tasks this transaction holds) as skipped."""
    if ids:
        sql = SKIP.format(ids=tx.dialect.ids_query)
        skipped = tx.count(sql, (tx.now, tx.dialect.ids_param(ids)))
        shift(tx, workflow_id, TaskState.TODO, TaskState.COMPLETED, skipped)
    return ids
