"""``Tx``: one open write or read transaction, as every store module sees it.

A ``Tx`` carries the connection (already inside ``BEGIN``), the dialect and
the transaction's ``now``, and collects what is settled at the end: counter
moves (``shift``), whether to wake waiting claims, and the statements the
dialect sends with the COMMIT. Kept apart from the rules so that every
module of rules (``transitions``, ``dependents``, ``claim``...) can use it
without importing another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stq.model import TaskState
from stq.store.dialect import Dialect


@dataclass
class Tx:
    """An open transaction: run statements in the dialect's parameter style.

    ``moves`` holds the counter deltas per workflow until ``apply_counts``;
    ``wake`` says a task may have become claimable, so waiting claims on
    other servers should look again (PostgreSQL: a NOTIFY with the commit).
    ``tail`` holds statements sent with the COMMIT and ``after`` reads run
    just after it (see ``Dialect.commit``); ``checked`` their rows.
    """

    conn: Any
    dialect: Dialect
    now: float
    moves: dict[int, dict[TaskState, int]] = field(default_factory=dict)
    wake: bool = False
    tail: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    checked: list[Any] = field(default_factory=list)

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.sql(sql), params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.run(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.run(sql, params).fetchall()

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an UPDATE; how many rows it changed.

        (sqlite3 knows ``rowcount`` only for a statement that starts with
        UPDATE, INSERT, DELETE or REPLACE: write a CTE inside, not before.)
        """
        return int(self.run(sql, params).rowcount)

    def defer(self, sql: str, ints: Sequence[int] = ()) -> None:
        """Run ``sql`` with the COMMIT where the dialect batches it, else now."""
        if self.dialect.batches_commit:
            self.tail.append(inline(sql, ints))
        else:
            self.run(sql, ints)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` for each row; an iterator keeps 100,000 rows out of memory."""
        self.conn.cursor().executemany(self.dialect.sql(sql), rows)


def inline(sql: str, ints: Sequence[int]) -> str:
    """``sql`` with its ``?`` parameters written in as integer literals.

    For the statements a dialect batches with the COMMIT, which must carry
    no parameters; only integers are accepted, so nothing can be injected.
    """
    pieces = sql.split("?")
    text = [pieces[0]]
    for value, piece in zip(ints, pieces[1:], strict=True):
        text += [str(int(value)), piece]
    return "".join(text)


def shift(tx: Tx, workflow_id: int, old: TaskState, new: TaskState, count: int = 1) -> None:
    """Move ``count`` tasks between the workflow's per-state counters (at ``apply_counts``)."""
    if old != new and count:
        moves = tx.moves.setdefault(workflow_id, dict.fromkeys(TaskState, 0))
        moves[old] -= count
        moves[new] += count
