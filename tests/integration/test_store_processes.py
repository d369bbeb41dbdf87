"""The store shared by several OS processes and threads: opening, schema and claims.

Each process opens its own store on one file, as gunicorn workers do. The
claim must be atomic across processes: every task claimed and completed
exactly once, however the claims interleave.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from stq.errors import StoreUnavailable, UsageError
from stq.model import AttemptStatus, Report, TaskSpec, WorkflowSpec, WorkflowState
from stq.store import PostgresNotInstalled, open_store
from stq.store.dialect import SCHEMA_VERSION
from tests.helpers import wait_until

TASKS = 500
PROCESSES = 4


def _drain(db: str, name: str, go: Any, results: Any) -> None:
    """Claim and complete until nothing is left; put (name, task ids run) on ``results``."""
    store = open_store(db)
    done: list[str] = []
    go.wait(60)  # a barrier: once every process has opened its store, they race
    try:
        while (claim := store.claim_attempt(name, [])) is not None:
            store.heartbeat(claim.attempt_id)
            store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0, name))
            done.append(claim.task_id)
            time.sleep(0.002)  # stands for running the command: lets the others take the lock
    finally:
        store.close()
    results.put((name, done))


def _open_only(db: str) -> int:
    store = open_store(db)
    store.check()
    store.close()
    return 1


def _spawn() -> multiprocessing.context.SpawnContext:
    return multiprocessing.get_context("spawn")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file or a fresh PostgreSQL database (tests/pg.py)."""
    if request.param == "sqlite":
        return str(tmp_path / "stq.db")
    return str(request.getfixturevalue("pg_url"))


def test_processes_claim_each_task_exactly_once(db: str) -> None:
    store = open_store(db)
    # a chain at the front makes processes wait on dependencies, the rest runs wide
    tasks = [
        TaskSpec(f"t{i}", "true", depends_on=(f"t{i - 1}",) if 0 < i < 5 else ())
        for i in range(TASKS)
    ]
    wid = store.submit_workflow(WorkflowSpec("many", tuple(tasks))).id
    ctx = _spawn()
    go, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_drain, args=(db, f"p{n}", go, results)) for n in range(PROCESSES)]
    for proc in procs:
        proc.start()
    parts = dict(results.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    ran = [task_id for part in parts.values() for task_id in part]
    assert len(ran) == TASKS and len(set(ran)) == TASKS  # each exactly once
    assert sum(1 for part in parts.values() if part) >= 2  # they really did run side by side
    got = store.get_workflow(wid)
    assert got.state == WorkflowState.COMPLETED and got.counts["completed"] == TASKS
    assert store.metrics().attempts == {
        "running": 0,
        "completed": TASKS,
        "failed": 0,
        "timed_out": 0,
    }
    assert all(task.attempts_used == 1 for task in got.tasks or ())
    store.close()


def test_threads_sharing_one_store_claim_each_task_once(db: str) -> None:
    """gunicorn gthread workers share one store object (SQLite: a connection per thread)."""
    store = open_store(db)
    store.submit_workflow(
        WorkflowSpec("threads", tuple(TaskSpec(f"t{i}", "true") for i in range(200)))
    )

    def drain() -> list[str]:
        done = []
        while (claim := store.claim_attempt("thread", [])) is not None:
            store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0))
            done.append(claim.task_id)
        return done

    with ThreadPoolExecutor(8) as pool:
        ran = [tid for part in pool.map(lambda _: drain(), range(8)) for tid in part]
    assert len(ran) == 200 and len(set(ran)) == 200
    assert store.metrics().tasks["completed"] == 200
    store.close()


def test_many_processes_create_the_schema_at_once(tmp_path: Path) -> None:
    db = str(tmp_path / "fresh.db")
    with _spawn().Pool(PROCESSES) as pool:
        assert pool.map(_open_only, [db] * PROCESSES) == [1] * PROCESSES
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/via-url.db")
    store.close()
    assert (tmp_path / "via-url.db").exists()
    with pytest.raises(StoreUnavailable, match="Cannot open"):
        open_store(str(tmp_path / "missing-dir" / "x.db"))
    with pytest.raises(StoreUnavailable):
        open_store("mysql://example/db")
    with pytest.raises(StoreUnavailable, match="Cannot connect to PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/stq")  # nothing listens on port 1
    with pytest.raises(UsageError, match="pool_size"):
        open_store("postgresql://127.0.0.1/stq?pool_size=zero")


def test_postgres_hint_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(PostgresNotInstalled) as caught:
        open_store("postgresql://localhost/stq")
    assert (
        caught.value.message == "PostgreSQL support is not installed: pip install 'stq[postgres]'"
    )


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable):
        open_store(str(junk))


def test_threads_run_a_layered_dag_to_the_end(db: str) -> None:
    """Results releasing dependents side by side (PostgreSQL: row locks, not one writer)."""
    layers, width = 8, 25
    tasks = [
        TaskSpec(
            f"l{k}t{i}",
            "true",
            depends_on=tuple(f"l{k - 1}t{(i + d) % width}" for d in range(3)) if k else (),
        )
        for k in range(layers)
        for i in range(width)
    ]
    store = open_store(db)
    wid = store.submit_workflow(WorkflowSpec("layers", tuple(tasks))).id
    done = Report(AttemptStatus.COMPLETED, 0)

    def drain(name: str) -> list[str]:
        ran: list[str] = []
        idle_since = time.monotonic()
        claim = store.claim_attempt(name, [])
        while claim is not None or time.monotonic() - idle_since < 2:  # others may release work
            if claim is None:
                time.sleep(0.005)
                claim = store.claim_attempt(name, [])
                continue
            ran.append(claim.task_name)
            idle_since = time.monotonic()
            _, claim = store.report_and_claim(claim.attempt_id, done, name, [])
            if store.get_workflow(wid, with_tasks=False).state != WorkflowState.RUNNING:
                break
        return ran

    with ThreadPoolExecutor(8) as pool:
        ran = [name for part in pool.map(drain, [f"r{n}" for n in range(8)]) for name in part]
    assert sorted(ran) == sorted(t.name for t in tasks)  # each exactly once
    got = store.get_workflow(wid)
    assert got.state == WorkflowState.COMPLETED and got.finished is not None
    assert got.counts == {"todo": 0, "in_process": 0, "completed": len(tasks), "failed": 0}
    if store.dialect.serial_writes:  # one writer at a time: its clock readings are in order
        by_name = {t.name: t for t in got.tasks or ()}
        for task in got.tasks or ():  # nothing started before its dependencies finished
            for dep in task.depends_on:
                assert by_name[dep].finished is not None and task.started is not None
                assert by_name[dep].finished <= task.started
    store.close()
    if not store.dialect.serial_writes:
        assert _deadlocks(db) == 0  # results release overlapping dependents in one order


def _deadlocks(url: str) -> int:
    """Deadlocks PostgreSQL broke in ``url``'s database, once its other sessions have ended.

    A session's statistics are published when it ends; the store's pool is
    closed, and its sessions end just after.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:

        def others_gone() -> bool:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            return not conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]

        wait_until(others_gone, timeout=10, what="the store's sessions to end")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0])
