"""Why a ``todo`` task has not started, told as tasks are read.

The first that applies: dependencies not yet terminal (the first
``MAX_NAMED`` by name, and how many more; ``pending_deps`` counts them, and an
``on_failure`` or ``always`` task waits for them as much as any, whatever
the others became), a retry delay still running, labels that no runner
heard from lately has all of, else a free runner. The facts come from the
reading transaction, loaded once per read (the runners, a workflow's task
states), so listing many tasks costs a few queries, not one per task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from stq.model import Attempt, Task, TaskState, WaitingFor, WaitKind
from stq.store import records, runners
from stq.store.statements import named
from stq.store.tx import Tx

#: Dependencies not yet terminal named at most; the rest are counted.
MAX_NAMED = 20
TASK_STATES = named("task_states")
_UNFINISHED = tuple(s.value for s in TaskState if not s.terminal)


class Waits:
    """Tells waits for the tasks of one read; the facts it needs are loaded on first use."""

    def __init__(self, tx: Tx, heartbeat_timeout: float):
        self.tx = tx
        self.heartbeat_timeout = heartbeat_timeout
        self._runner_labels: list[frozenset[str]] | None = None
        self._states: dict[int, dict[str, str]] = {}

    def tasks(
        self, rows: Iterable[Sequence[Any]], attempts: tuple[Attempt, ...] | None = None
    ) -> Iterable[Task]:
        """Task records for rows of ``{read_columns}`` (queries/reads.sql), each with its wait."""
        for row in rows:
            task = records.task_from_row(row, attempts)
            if task.state == TaskState.TODO:
                task = _with_wait(task, self.of(row, task))
            yield task

    def of(self, row: Sequence[Any], task: Task) -> WaitingFor:
        pending_deps, ready_at = row[-2], row[-1]
        if pending_deps:
            return self._dependencies(row[1], task.depends_on)
        if ready_at is not None and ready_at > self.tx.now:
            return WaitingFor(WaitKind.RETRY_DELAY, until=ready_at)
        if task.labels and not self._someone_has(task.labels):
            return WaitingFor(WaitKind.LABELS, labels=task.labels)
        return WaitingFor(WaitKind.RUNNER)

    def _dependencies(self, workflow_id: int, names: Sequence[str]) -> WaitingFor:
        states = self._states.get(workflow_id)
        if states is None:
            rows = self.tx.all(TASK_STATES, (workflow_id,))
            states = self._states[workflow_id] = dict(rows)
        unfinished = [name for name in names if states.get(name) in _UNFINISHED]
        return WaitingFor(
            WaitKind.DEPENDENCIES,
            tasks=tuple(unfinished[:MAX_NAMED]),
            more=max(0, len(unfinished) - MAX_NAMED),
        )

    def _someone_has(self, labels: Sequence[str]) -> bool:
        if self._runner_labels is None:
            listed = runners.listing(self.tx, self.heartbeat_timeout)
            self._runner_labels = [frozenset(r.labels) for r in listed]
        needed = set(labels)
        return any(needed <= have for have in self._runner_labels)


def _with_wait(task: Task, wait: WaitingFor) -> Task:
    return replace(task, waiting_for=wait)
