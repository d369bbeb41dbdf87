"""The PostgreSQL dialect: several servers, one database, one queue.

Why these choices:

- One ``psycopg_pool.ConnectionPool`` per process, opened on first use and
  re-created after a fork (gunicorn forks workers after the app is imported).
  Each transaction borrows a connection and gives it back, so a server's 32
  long-polling threads per worker need only a few connections. Size it with
  ``?pool_size=N`` on the URL (default ``DEFAULT_POOL_SIZE``).
- Writes run side by side under ``READ COMMITTED`` with row locks: a claim
  takes its task ``FOR UPDATE SKIP LOCKED`` (a task another server is taking
  is passed over, never waited for), a result locks its attempt and task,
  expiry skips attempts another server is expiring. A workflow's counters
  are sharded by connection (``count_shard``), so writes on one workflow do
  not queue for one row. Every transaction locks attempt, then task, then
  counter rows, and the store runs a transaction again in the rare case
  PostgreSQL aborts it to break a deadlock (``retry_errors``).
- A transaction's last statements (counters, NOTIFY, COMMIT, the read that
  settles a workflow) go in one round trip (``commit``): round trips, not
  the database's work, are most of a result's time here. They go as one
  simple query, the only way PostgreSQL runs several statements in one
  trip, with their parameters bound by psycopg on this side
  (``ClientCursor``); psycopg's pipeline mode, the other way, measured
  about 0.3 ms slower per commit here.
- Cancel, retry and delete change a whole workflow at once; they take
  ``WRITE_LOCK`` exclusively while every other write holds it shared, so they
  run alone and the rules about a cancel racing a claim hold exactly as on
  SQLite. Shared holders never wait for each other.
- Reads run in a ``REPEATABLE READ READ ONLY`` snapshot and take no lock.
- Long polls wake through ``LISTEN/NOTIFY``: a write that may have made a
  task claimable (a submit, a completion releasing dependents, a retry) sends
  ``NOTIFY stq_claimable`` with its commit; one listening connection per
  process counts the notifications, and waiting claims compare that count in
  memory, so 100 idle runners cost the database nothing. Claims and
  heartbeats send none (NOTIFY serializes commits that send one). If the
  listening connection is lost, waiting claims fall back to the API's
  periodic re-try until it is back.
- The schema is created and migrated under ``pg_advisory_xact_lock`` so
  two servers starting at once do not race.
- A submit of many tasks is followed by ``ANALYZE task, dependency``
  (``refresh_statistics``, ~0.1 s for 100,000 tasks) instead of waiting up to
  a minute for autovacuum: planned over statistics from before it, the walk
  downstream of a failure at the head of a 20,000-task chain took 17 s, with
  ``run_if`` tasks 300 s; after it, 0.3 s.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool

from stq.errors import StoreUnavailable, UsageError
from stq.store.dialect import COMMIT, SCHEMA_VERSION, Call, Dialect, create_schema
from stq.store.statements import Name, named

#: Connections per process unless the URL says ``?pool_size=N``.
DEFAULT_POOL_SIZE = 8
#: Seconds to wait for a connection (from the server, or from a busy pool).
CONNECT_TIMEOUT = 10
#: The advisory lock every write holds, shared or alone ("STQ" and 1); written out in
#: queries/postgresql.sql, where a lock key cannot be a parameter of ``BEGIN``'s trip.
WRITE_LOCK = 0x535451_0001
#: Seconds the listener waits for a notification before checking it should stop.
LISTEN_TICK = 1.0
#: Seconds between tries to re-open a lost listening connection.
RELISTEN_DELAY = 1.0


def _named(name: str) -> Name:
    return named(name, dialect="postgresql")


LISTEN_WAKES = _named("pg_listen_wakes")
BEGIN_SCHEMA = _named("pg_begin_schema")
SCHEMA_TABLE = _named("pg_schema_table")
SCHEMA_VERSION_READ = _named("pg_schema_version")
STAMP_SCHEMA = _named("pg_stamp_schema")


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 and a per-process connection pool."""

    name = "postgresql"
    begin_write = _named("pg_begin_write")
    begin_exclusive = _named("pg_begin_exclusive")
    begin_read = _named("pg_begin_read")
    wake = _named("pg_wake_claims")
    batches_commit = True
    placeholder = "%s"
    unavailable_errors = (psycopg.OperationalError, psycopg.InterfaceError)
    refresh_statistics = _named("pg_refresh_statistics")
    retry_errors = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

    def __init__(self, url: str):
        self.conninfo, self.pool_size = split_pool_size(url)
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        #: The commit's one simple query, by the statements in it (a handful of shapes).
        self._batches: dict[tuple[Name, ...], str] = {}

    def connect(self) -> psycopg.Connection:
        """A direct autocommit connection (schema set-up, tests); requests use ``borrow``."""
        try:
            return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as ex:
            raise StoreUnavailable(f"Cannot connect to PostgreSQL: {_first_line(ex)}") from ex

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        """A pooled connection for one transaction.

        Not in psycopg's pipeline mode: measured here, a result-and-claim took
        6.9-7.5 ms with it and 4.0-4.2 ms without (its extra socket waits cost
        more than the round trips it saves on a local database).
        """
        with self._current_pool().connection() as conn:
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
                self._ensure_schema(conn)
            except psycopg.Error as ex:
                raise StoreUnavailable(f"Cannot use PostgreSQL: {_first_line(ex)}") from ex

    def change_marker(self, borrow: Callable[[], AbstractContextManager[Any]]) -> object:
        """How many wake-ups this process's listener has heard: read from memory.

        The call that starts the listener waits (up to ``CONNECT_TIMEOUT``)
        until it listens, so a wake-up sent after any call changes the value;
        later calls never wait, even while the database is down (waiting
        claims then re-try on the API's timer).
        """
        with self._lock:
            listener = self._listener
            started = listener is None or listener.pid != os.getpid()
            if started:
                listen = self.queries[LISTEN_WAKES]
                listener = self._listener = Listener(self.conninfo, listen)  # not forked
        if started:
            listener.listening.wait(CONNECT_TIMEOUT)
        return listener.heard

    def commit(self, conn: Any, tail: Sequence[Call], after: Sequence[Call]) -> list[Any]:
        """Everything in one round trip: one simple query (which may hold a ``;`` list of
        statements), its parameters bound by psycopg (``ClientCursor``)."""
        calls = [*tail, (COMMIT, ()), *after]
        names = tuple(name for name, _ in calls)
        batch = self._batches.get(names)
        if batch is None:
            batch = self._batches[names] = "; ".join(self.queries[name] for name in names)
        cursor = psycopg.ClientCursor(conn)
        cursor.execute(batch, [value for _, params in calls for value in params])
        for _ in tail:
            cursor.nextset()  # past each tail statement's result, to the COMMIT's
        rows = []
        for _ in after:
            cursor.nextset()
            rows.append(cursor.fetchone())
        return rows

    def _ensure_schema(self, conn: psycopg.Connection) -> None:
        """Under an advisory lock: the first server creates the tables, the others wait and see."""
        create_schema(
            conn,
            self,
            resource="postgres.sql",
            begin=BEGIN_SCHEMA,
            read_version=self._schema_version,
            stamp=(STAMP_SCHEMA, (SCHEMA_VERSION,)),
        )

    def _schema_version(self, conn: psycopg.Connection) -> int:
        if self.execute(conn, SCHEMA_TABLE).fetchone()[0] is None:
            return 0
        row = self.execute(conn, SCHEMA_VERSION_READ).fetchone()
        return int(row[0] or 0)

    def ids_param(self, ids: Sequence[int]) -> list[int]:
        return [int(i) for i in ids]

    def clean_text(self, text: str) -> str:
        return text.replace("\x00", "\ufffd")  # a command's output may carry NUL bytes

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            listener, self._listener = self._listener, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()
        if listener is not None:
            listener.stop()


class Listener:
    """One connection per process that LISTENs for wake-ups and counts them.

    ``heard`` also moves each time the connection is (re-)opened: a
    notification sent while nobody listened may have been missed, so waiting
    claims must look again. The thread is a daemon: a server process that
    exits does not wait for it.
    """

    def __init__(self, conninfo: str, listen: str):
        self.conninfo = conninfo
        self.listen = listen
        self.pid = os.getpid()
        self.heard = 0
        self.listening = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stq-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.pid == os.getpid():
            self._thread.join(LISTEN_TICK + CONNECT_TIMEOUT)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except psycopg.Error:
                self._stopping.wait(RELISTEN_DELAY)

    def _listen(self) -> None:
        with psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        ) as conn:
            conn.execute(self.listen)
            self.heard += 1
            self.listening.set()
            while not self._stopping.is_set():
                for _ in conn.notifies(timeout=LISTEN_TICK):
                    self.heard += 1


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
