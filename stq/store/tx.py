"""``Tx``: one open write or read transaction, as every store module sees it.

A ``Tx`` carries the connection (already inside ``BEGIN``), the dialect and
the transaction's ``now``, and collects what is settled at the end: counter
moves (``shift``), whether to wake waiting claims, and the statements the
dialect sends with the COMMIT. Kept apart from the rules so that every
module of rules (``transitions``, ``dependents``, ``claim``...) can use it
without importing another. It runs named statements only (``statements.named``),
always with parameters: values never become SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stq.model import TaskState
from stq.store.dialect import Call, Dialect
from stq.store.statements import Name


@dataclass
class Tx:
    """An open transaction: run named statements in the dialect's parameter style.

    ``moves`` holds the counter deltas per workflow until ``apply_counts``;
    ``wake`` says a task may have become claimable, so waiting claims on
    other servers should look again (PostgreSQL: a NOTIFY with the commit).
    ``tail`` holds statements sent with the COMMIT and ``after`` reads run
    just after it (see ``Dialect.commit``); ``checked`` their rows.
    ``started`` names the workflows in which an attempt was started.
    """

    conn: Any
    dialect: Dialect
    now: float
    moves: dict[int, dict[TaskState, int]] = field(default_factory=dict)
    wake: bool = False
    tail: list[Call] = field(default_factory=list)
    after: list[Call] = field(default_factory=list)
    checked: list[Any] = field(default_factory=list)
    #: Workflows in which this transaction started an attempt: running at its commit.
    started: set[int] = field(default_factory=set)

    def run(self, name: Name, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.queries[name], params)

    def one(self, name: Name, params: Sequence[Any] = ()) -> Any:
        return self.run(name, params).fetchone()

    def all(self, name: Name, params: Sequence[Any] = ()) -> list[Any]:
        return self.run(name, params).fetchall()

    def count(self, name: Name, params: Sequence[Any] = ()) -> int:
        """Run an UPDATE; how many rows it changed.

        (sqlite3 knows ``rowcount`` only for a statement that starts with
        UPDATE, INSERT, DELETE or REPLACE: write a CTE inside, not before.)
        """
        return int(self.run(name, params).rowcount)

    def defer(self, name: Name, params: Sequence[Any] = ()) -> None:
        """Run the statement with the COMMIT where the dialect batches it, else now."""
        if self.dialect.batches_commit:
            self.tail.append((name, params))
        else:
            self.run(name, params)

    def many(self, name: Name, rows: Iterable[Sequence[Any]]) -> None:
        """Run the statement for each row; an iterator keeps 100,000 rows out of memory."""
        self.conn.cursor().executemany(self.dialect.queries[name], rows)


def shift(tx: Tx, workflow_id: int, old: TaskState, new: TaskState, count: int = 1) -> None:
    """Move ``count`` tasks between the workflow's per-state counters (at ``apply_counts``)."""
    if old != new and count:
        moves = tx.moves.setdefault(workflow_id, dict.fromkeys(TaskState, 0))
        moves[old] -= count
        moves[new] += count
        if new == TaskState.IN_PROCESS:
            tx.started.add(workflow_id)
