"""What only the PostgreSQL store has: schema lock, pool, lost connections, SQL hygiene."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from stq.errors import StoreUnavailable, StqError
from stq.model import AttemptStatus, Report, TaskSpec, WorkflowSpec
from stq.store import open_store
from stq.store.dialect import schema_statements
from stq.store.postgres import SCHEMA_VERSION, split_pool_size

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
