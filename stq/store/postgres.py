"""The PostgreSQL dialect: several servers, one database, one queue.

Why these choices:

- One ``psycopg_pool.ConnectionPool`` per process, opened on first use and
  re-created after a fork (gunicorn forks workers after the app is imported).
  Each transaction borrows a connection and gives it back, so a server's 32
  long-polling threads per worker need only a few connections. Size it with
  ``?pool_size=N`` on the URL (default ``DEFAULT_POOL_SIZE``).
- Writes take one transaction-scoped advisory lock (``WRITE_LOCK``): STQ's
  rules were written for one writer at a time (SQLite's ``BEGIN IMMEDIATE``),
  and the same serial order on PostgreSQL keeps every rule (expiry, counters,
  cancel racing a claim) exactly as tested. Writes are a few short statements,
  so the lock is held for well under a millisecond. Reads never take it and run
  in a ``REPEATABLE READ READ ONLY`` snapshot. The claim's candidate row is
  also locked ``FOR UPDATE SKIP LOCKED``, so a claim never waits on a row
  another transaction holds.
- The long poll's change marker is a one-row counter (``stq_change``) that
  each write transaction bumps in the same round trip as its ``BEGIN``: it
  moves exactly when a write commits (unlike ``pg_current_wal_lsn()``, which
  also moves with vacuum or other databases), works on PostgreSQL-compatible
  databases, and needs no LISTEN connection per process. Each process reads
  it at most every ``MARKER_TTL``, however many runners wait on it.
- The schema is created (later: migrated) under ``pg_advisory_xact_lock`` so
  two servers starting at once on an empty database do not race.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool

from stq.errors import StoreUnavailable, UsageError
from stq.store.dialect import Dialect, create_schema

#: stq_schema.version of the schema this code writes; migrations key on it.
SCHEMA_VERSION = 1
#: Connections per process unless the URL says ``?pool_size=N``.
DEFAULT_POOL_SIZE = 8
#: Seconds to wait for a connection (from the server, or from a busy pool).
CONNECT_TIMEOUT = 10
#: Advisory lock keys ("STQ" + a number), per database.
SCHEMA_LOCK = 0x535451_0000
WRITE_LOCK = 0x535451_0001
#: Seconds one process reuses its last change marker (long polls compare every 20 ms).
MARKER_TTL = 0.01


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 and a per-process connection pool."""

    name = "postgresql"
    begin_write = (
        f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK}); "
        "UPDATE stq_change SET n = n + 1"
    )
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    lock_candidate = " FOR UPDATE SKIP LOCKED"
    placeholder = "%s"
    unavailable_errors = (psycopg.OperationalError, psycopg.InterfaceError)

    def __init__(self, url: str):
        self.conninfo, self.pool_size = split_pool_size(url)
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()
        self._marker: object = None
        self._marker_at = float("-inf")

    def connect(self) -> psycopg.Connection:
        """A direct autocommit connection (schema set-up, tests); requests use ``borrow``."""
        try:
            return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as ex:
            raise StoreUnavailable(f"Cannot connect to PostgreSQL: {_first_line(ex)}") from ex

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        """A pooled connection in pipeline mode: statements whose results are not read
        (BEGIN, UPDATE, INSERT, COMMIT) travel with the next one that is, which
        halves the round trips of a claim or a result."""
        with self._current_pool().connection() as conn, conn.pipeline():
            yield conn

    def _current_pool(self) -> psycopg_pool.ConnectionPool:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = psycopg_pool.ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                    timeout=CONNECT_TIMEOUT,
                    name="stq",
                    open=False,
                )
                self._pool.open()
                self._pool_pid = os.getpid()
            return self._pool

    def ensure_schema(self) -> None:
        """Create the schema unless there; refuse one written by a newer STQ."""
        with self.connect() as conn:
            try:
                _ensure_schema(conn)
            except psycopg.Error as ex:
                raise StoreUnavailable(f"Cannot use PostgreSQL: {_first_line(ex)}") from ex

    def change_marker(self, conn: Any) -> object:
        """The write counter, asked at most once per ``MARKER_TTL`` per process.

        Every waiting long poll asks every 20 ms; sharing one answer between a
        worker's threads keeps 100 waiting runners at ~100 queries/s, not 5,000.
        """
        with self._lock:
            if time.monotonic() - self._marker_at < MARKER_TTL and self._pool_pid == os.getpid():
                return self._marker
        marker = conn.execute("SELECT n FROM stq_change").fetchone()[0]
        with self._lock:
            self._marker, self._marker_at = marker, time.monotonic()
        return marker

    def clean_text(self, text: str) -> str:
        return text.replace("\x00", "\ufffd")  # a command's output may carry NUL bytes

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()


def split_pool_size(url: str) -> tuple[str, int]:
    """The URL without STQ's ``pool_size`` query parameter, and that size."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sizes = [value for key, value in query if key == "pool_size"]
    rest = urlencode([(k, v) for k, v in query if k != "pool_size"], quote_via=quote)
    if not sizes:
        return urlunsplit(parts._replace(query=rest)), DEFAULT_POOL_SIZE
    if not sizes[-1].isdigit() or not 1 <= int(sizes[-1]) <= 1000:
        raise UsageError(f"pool_size={sizes[-1]!r} in the store URL: expected 1..1000")
    return urlunsplit(parts._replace(query=rest)), int(sizes[-1])


def _first_line(ex: BaseException) -> str:
    return (str(ex).strip().splitlines() or [type(ex).__name__])[0]


def _ensure_schema(conn: psycopg.Connection) -> None:
    """Under an advisory lock: the first server creates the tables, the others wait and see."""
    create_schema(
        conn,
        resource="postgres.sql",
        version=SCHEMA_VERSION,
        begin=["BEGIN", f"SELECT pg_advisory_xact_lock({int(SCHEMA_LOCK)})"],
        read_version=_schema_version,
        stamp=f"INSERT INTO stq_schema (version) VALUES ({int(SCHEMA_VERSION)})",
    )


def _schema_version(conn: psycopg.Connection) -> int:
    if conn.execute("SELECT to_regclass('stq_schema')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT max(version) FROM stq_schema").fetchone()
    return int(row[0] or 0)
