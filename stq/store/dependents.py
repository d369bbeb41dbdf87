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
from stq.store.statements import named
from stq.store.tx import Tx, shift

FAIL_DOWNSTREAM = named("fail_downstream")
FAIL_ON_SUCCESS_DOWNSTREAM = named("fail_on_success_downstream")
RELEASE_DEPENDENTS = named("release_dependents")
RELEASE_ONE = named("release_one")
RELEASE_MANY_COMPLETED = named("release_many_completed")
RELEASE_MANY_FAILED = named("release_many_failed")
SKIP_TASKS = named("skip_tasks")
READY_TO_SKIP = named("ready_to_skip")


def completed(tx: Tx, workflow_id: int, task_id: int, has_run_if: bool) -> None:
    """``task_id`` (which has dependents) completed: release them, waking waiting claims."""
    if has_run_if:
        release(tx, workflow_id, [task_id])
        return
    tx.run(RELEASE_DEPENDENTS, (task_id,))
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
        return tx.all(RELEASE_ONE, (ended[0],))
    many = RELEASE_MANY_FAILED if failed else RELEASE_MANY_COMPLETED
    return tx.all(many, (tx.dialect.ids_param(ended),))


def _skip(tx: Tx, workflow_id: int, ids: list[int]) -> list[int]:
    """Complete ``ids`` (waiting ``on_failure`` tasks this transaction holds) as skipped."""
    if ids:
        skipped = tx.count(SKIP_TASKS, (tx.now, tx.dialect.ids_param(ids)))
        shift(tx, workflow_id, TaskState.TODO, TaskState.COMPLETED, skipped)
    return ids
