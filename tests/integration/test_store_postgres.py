"""What only the PostgreSQL store has: schema lock, pool, lost connections, writes side by
side, LISTEN/NOTIFY wake-ups, SQL hygiene."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from stq.errors import StoreUnavailable, StqError
from stq.model import AttemptStatus, Report, TaskSpec, WorkflowSpec
from stq.store import open_store
from stq.store.dialect import SCHEMA_VERSION, schema_statements
from stq.store.postgres import WRITE_LOCK, split_pool_size
from stq.store.sql import REFRESH_STATISTICS_AFTER
from tests.helpers import wait_until

SERVERS = 4


def _open_only(url: str) -> int:
    store = open_store(url)
    store.check()
    store.close()
    return 1


def test_servers_starting_at_once_create_the_schema_once(pg_empty_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(SERVERS) as pool:
        assert pool.map(_open_only, [pg_empty_url] * SERVERS) == [1] * SERVERS
    with psycopg.connect(pg_empty_url) as conn:
        assert conn.execute("SELECT version FROM stq_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE stq_schema SET version = 99")
    with pytest.raises(StqError, match="newer STQ"):
        open_store(pg_url)


def test_pool_size_from_the_url() -> None:
    assert split_pool_size("postgresql://h/db?pool_size=3&sslmode=disable") == (
        "postgresql://h/db?sslmode=disable",
        3,
    )
    assert split_pool_size("postgresql://h/db")[1] >= 1


def test_pool_reuses_a_few_connections(pg_url: str) -> None:
    store = open_store(pg_url + "?pool_size=2")
    try:
        store.submit_workflow(WorkflowSpec("w", (TaskSpec("a", "true"),)))
        for _ in range(50):
            store.list_workflows()
        with psycopg.connect(pg_url) as conn:
            count = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
        assert count is not None and 1 <= count[0] <= 2
    finally:
        store.close()


def test_store_recovers_after_its_connections_are_killed(pg_url: str) -> None:
    """A database restart or failover drops connections: answers resume, never a traceback."""
    store = open_store(pg_url + "?pool_size=2")
    try:
        wid = store.submit_workflow(WorkflowSpec("w", (TaskSpec("a", "true"),))).id
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        failures = 0
        for _ in range(5):  # each dead pooled connection may fail one call, then is replaced
            try:
                assert store.get_workflow(wid).id == wid
                break
            except StoreUnavailable:
                failures += 1
        assert failures <= 2
        claim = store.claim_attempt("r", [])
        assert claim is not None
        ack = store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0))
        assert ack.task_state == "completed"
    finally:
        store.close()


def test_schema_has_no_sqlite_only_syntax() -> None:
    text = " ".join(schema_statements("postgres.sql")).upper()
    for word in ("AUTOINCREMENT", " REAL", "WITHOUT ROWID", "PRAGMA"):
        assert word not in text


# --- writes side by side -----------------------------------------------------------

#: Fails a statement that waits for a lock longer than this, instead of hanging the test.
NO_WAITING = "options=-c%20lock_timeout%3D1500"


def _with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def _two_tasks(url: str) -> tuple[str, str]:
    store = open_store(url)
    try:
        wf = store.submit_workflow(
            WorkflowSpec("w", (TaskSpec("a", "true"), TaskSpec("b", "true")))
        )
        return wf.id, wf.tasks[1].id if wf.tasks else ""
    finally:
        store.close()


def test_a_claim_passes_over_a_task_another_server_is_taking(pg_url: str) -> None:
    _, second = _two_tasks(pg_url)
    store = open_store(_with_option(pg_url, NO_WAITING))
    with psycopg.connect(pg_url) as other:  # holds task a as if mid-claim on another server
        other.execute("SELECT id FROM task WHERE name = 'a' FOR UPDATE")
        try:
            claim = store.claim_attempt("r", [])  # lock_timeout: waiting would raise
            assert claim is not None and claim.task_id == second
            assert store.claim_attempt("r", []) is None  # a is held: skipped, not waited for
        finally:
            store.close()
        other.rollback()


def test_writes_run_beside_each_other_and_cancel_runs_alone(pg_url: str) -> None:
    wid, _ = _two_tasks(pg_url)
    store = open_store(_with_option(pg_url, NO_WAITING))
    try:
        with psycopg.connect(pg_url) as other:  # another server's write, still open
            other.execute(f"SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})")
            claim = store.claim_attempt("r", [])
            assert claim is not None
            ack = store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0))
            assert ack.task_state == "completed"
            with pytest.raises(StoreUnavailable, match="lock timeout"):
                store.cancel_workflow(wid)  # waits for every write in flight
            other.rollback()
        assert store.cancel_workflow(wid).counts == {
            "todo": 0,
            "in_process": 0,
            "completed": 1,
            "failed": 1,
        }
    finally:
        store.close()


def test_concurrent_completions_of_the_last_tasks_finish_the_workflow(pg_url: str) -> None:
    """Two transactions complete a workflow's last two tasks at once: the later one settles it."""
    store = open_store(pg_url)
    try:
        wid = store.submit_workflow(
            WorkflowSpec("w", tuple(TaskSpec(f"t{i}", "true") for i in range(40)))
        ).id
        claims = [store.claim_attempt("r", []) for _ in range(40)]
        done = Report(AttemptStatus.COMPLETED, 0)
        with ThreadPoolExecutor(8) as pool:
            acks = list(pool.map(lambda c: store.report_result(c.attempt_id, done), claims))
        assert {ack.task_state for ack in acks} == {"completed"}
        got = store.get_workflow(wid)
        assert got.state == "completed" and got.counts["completed"] == 40
        assert got.finished is not None
    finally:
        store.close()


# --- wake-ups ------------------------------------------------------------------------


def test_the_listener_comes_back_after_its_connection_is_killed(pg_url: str) -> None:
    store = open_store(pg_url)
    other = open_store(pg_url)
    try:
        other.submit_workflow(WorkflowSpec("w", (TaskSpec("a", "true"), TaskSpec("b", "true"))))
        before = store.change_marker()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        # re-listening moves the marker (a wake-up may have been missed meanwhile) ...
        wait_until(lambda: store.change_marker() != before, what="the listener to come back")
        wait_until(lambda: _listening(pg_url), what="LISTEN again")
        after = store.change_marker()
        other.submit_workflow(WorkflowSpec("w2", (TaskSpec("c", "true"),)))
        # ... and later wake-ups are heard again
        wait_until(lambda: store.change_marker() != after, what="the next wake-up")
    finally:
        store.close()
        other.close()


def _listening(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        ).fetchone()
    return row is not None and row[0] == 1


# --- planner statistics -------------------------------------------------------------


def test_a_big_submit_refreshes_the_planner_statistics_at_once(pg_url: str) -> None:
    """Plans made over statistics from before a big submit walk a failure's downstream
    in minutes (see ``PostgresDialect``): the submit refreshes them, not autovacuum later."""
    store = open_store(pg_url)
    try:
        tasks = tuple(TaskSpec(f"t{i}", "true") for i in range(REFRESH_STATISTICS_AFTER))
        store.submit_workflow(WorkflowSpec("big", tasks))
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('task', 'dependency')"
        ).fetchall()
    assert dict(rows)["task"] >= REFRESH_STATISTICS_AFTER  # -1 until the table is analyzed
    assert dict(rows)["dependency"] >= 0
