"""The store's own SQLite checkpoints (``stq.store.sqlite``): the WAL is rewound
every ``CHECKPOINT_EVERY`` writes, and a long read does not make every write wait.

The case they are for, writers from several processes following one another
without a gap, depends on timing; docs/performance.md (item 14) has its
measurements. These pin down the policy itself, on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from stq.model import AttemptStatus, Claim, Report, TaskSpec, WorkflowSpec
from stq.store import open_store
from stq.store.sql import SqlStore
from stq.store.sqlite import CHECKPOINT_BACKOFF, CHECKPOINT_EVERY

DONE = Report(AttemptStatus.COMPLETED, exit_code=0, output="")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(str(tmp_path / "stq.db"))
    assert isinstance(opened, SqlStore)
    tasks = tuple(TaskSpec(f"t{i}", "true") for i in range(8 * CHECKPOINT_EVERY))
    opened.submit_workflow(WorkflowSpec("many", tasks))
    yield opened
    opened.close()


def _write(store: SqlStore, claim: Claim | None, times: int) -> Claim | None:
    """``times`` write transactions: each reports an attempt and claims the next."""
    for _ in range(times):
        claim = (
            store.claim_attempt("r", [])
            if claim is None
            else store.report_and_claim(claim.attempt_id, DONE, "r", [])[1]
        )
    return claim


def _frames_in_wal(path: Path) -> int:
    """Frames the WAL holds now (a probe's passive checkpoint reports it)."""
    with sqlite3.connect(path) as probe:
        return probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def _restarts(store: SqlStore) -> list[str]:
    """The ``RESTART`` checkpoints the store's connection runs from now on (one thread
    writing alone borrows the same pooled connection each time)."""
    seen: list[str] = []
    with store._db.borrow() as conn:
        conn.set_trace_callback(
            lambda sql: seen.append(sql) if "wal_checkpoint(RESTART)" in sql else None
        )
    return seen


@pytest.mark.parametrize("own_checkpoints", [True, False])
def test_the_wal_is_rewound_every_so_many_writes(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_checkpoints: bool
) -> None:
    if not own_checkpoints:  # the control: SQLite's own checkpoint alone, at 10,000 pages
        monkeypatch.setattr("stq.store.sqlite.CHECKPOINT_EVERY", 10**9)
    _write(store, None, 6 * CHECKPOINT_EVERY)
    # SQLite reuses the WAL file at its largest: its size is the most it ever held.
    # A result and claim writes ~9 pages: ~1,000 pages (4 MiB) between two of ours.
    wal_bytes = (tmp_path / "stq.db-wal").stat().st_size
    if own_checkpoints:
        assert wal_bytes < 6 * 2**20, wal_bytes
    else:
        assert wal_bytes > 12 * 2**20, wal_bytes


def test_a_long_read_does_not_hold_every_write_back(store: SqlStore, tmp_path: Path) -> None:
    now = [0.0]
    store.dialect.clock = lambda: now[0]  # type: ignore[attr-defined]
    claim = _write(store, None, 1)
    restarts = _restarts(store)
    with sqlite3.connect(tmp_path / "stq.db", isolation_level=None) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM task").fetchone()  # an old snapshot, kept
        claim = _write(store, claim, 3 * CHECKPOINT_EVERY)
        # The first try could not rewind past the reader; the rest wait out the back-off
        # instead of holding every writer back CHECKPOINT_WAIT each time.
        assert len(restarts) == 1
        reader.execute("COMMIT")
    now[0] += CHECKPOINT_BACKOFF
    before = len(restarts)
    _write(store, claim, CHECKPOINT_EVERY)
    assert len(restarts) == before + 1  # tried again once the back-off was over
    # and rewound it: the 3 x CHECKPOINT_EVERY writes beside the reader left ~2,700 pages
    assert _frames_in_wal(tmp_path / "stq.db") < 1_000
