"""The SQLite dialect: one file, WAL, a busy timeout, ``BEGIN IMMEDIATE`` writes.

Why these settings:

- WAL lets readers run while one writer commits, which is what many gunicorn
  processes and threads polling the same file need.
- ``BEGIN IMMEDIATE`` takes the write lock when a write transaction starts, so
  two processes can never both read a task as claimable and both claim it; the
  second waits (``busy_timeout``) and then sees the first one's claim.
- ``synchronous=NORMAL`` in WAL mode never corrupts the file and loses nothing
  when a process is killed (kill -9 included): a commit is in the WAL file
  before COMMIT returns. Only a power loss or OS crash may lose the last few
  commits (they were not fsynced), which is the usual trade for a queue.
- Foreign keys are on so a bug can never leave an attempt without its task.
- Checkpoints: SQLite's own (after a commit that leaves 1,000 pages in the
  WAL, with ``PASSIVE``) never gets to *rewind* the WAL while writers
  follow one another without a gap, as several runners' results do: a
  rewind needs a writer that begins after everything was copied back, and
  the next writer always began first. The WAL then only grows, and every
  commit runs a checkpoint with two fsyncs: a tenth to a fifth of a busy
  server's CPU. So each process checkpoints every ``CHECKPOINT_EVERY``
  writes itself: ``PASSIVE`` copies the WAL back without stopping anyone,
  then ``RESTART`` holds writers back for the few pages written meanwhile
  and rewinds the WAL, waiting at most ``CHECKPOINT_WAIT``. While a long
  read keeps the WAL from being rewound, that wait would hold every writer
  back each time, so a process that could not rewind tries again only
  after ``CHECKPOINT_BACKOFF``. SQLite's own checkpoint stays on, at
  ``AUTOCHECKPOINT_PAGES``, for large writes.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from stq.errors import StoreUnavailable
from stq.store.dialect import SCHEMA_VERSION, Dialect, create_schema

#: Seconds a connection waits for another one's write lock before giving up.
BUSY_TIMEOUT = 30.0
#: Write commits of one process between two of its checkpoints.
CHECKPOINT_EVERY = 100
#: Seconds before a process tries again after a checkpoint that could not rewind the
#: WAL (a long read holds it): each try holds writers back for up to CHECKPOINT_WAIT.
CHECKPOINT_BACKOFF = 0.5
#: Seconds a checkpoint waits for the current writer and readers before giving up.
CHECKPOINT_WAIT = 0.005
#: WAL pages at which SQLite checkpoints on its own: after a large write (a big
#: submit), or if ours keep failing.
AUTOCHECKPOINT_PAGES = 10_000


class SqliteDialect(Dialect):
    """SQLite through the standard library's ``sqlite3``."""

    name = "sqlite"
    begin_write = "BEGIN IMMEDIATE"
    begin_exclusive = "BEGIN IMMEDIATE"
    serial_writes = True
    begin_read = "BEGIN DEFERRED"
    unavailable_errors = (sqlite3.OperationalError, sqlite3.DatabaseError)
    ids_query = "SELECT value FROM json_each(?)"

    def __init__(self, path: str):
        self.path = path
        self._schema_ready = False
        self._writes = itertools.count(1)
        self._next_try = 0.0  # after a try that could not rewind; threads race on it, harmlessly
        #: The clock ``CHECKPOINT_BACKOFF`` is measured on (a test may stop it).
        self.clock: Callable[[], float] = time.monotonic

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as ex:
            raise StoreUnavailable(f"Cannot open the SQLite store {self.path!r}: {ex}") from ex
        try:
            _set_up(conn)
            if not self._schema_ready:
                _ensure_schema(conn)
                self._schema_ready = True
        except sqlite3.Error as ex:
            conn.close()
            raise StoreUnavailable(f"Cannot use the SQLite store {self.path!r}: {ex}") from ex
        except BaseException:
            conn.close()
            raise
        return conn

    def ids_param(self, ids: Sequence[int]) -> str:
        return "[" + ",".join(str(int(i)) for i in ids) + "]"

    def use_index(self, index: str) -> str:
        # Without statistics SQLite prefers an equality on `state` over a partial index.
        return f" INDEXED BY {index}"

    def after_write(self, conn: sqlite3.Connection) -> None:
        """Every ``CHECKPOINT_EVERY`` writes of this process, empty and rewind the WAL."""
        if next(self._writes) % CHECKPOINT_EVERY or self.clock() < self._next_try:
            return
        rewound = False
        try:
            _wait_for_locks(conn, CHECKPOINT_WAIT)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
                rewound = not busy
            finally:
                _wait_for_locks(conn, BUSY_TIMEOUT)
        except sqlite3.Error:
            pass  # housekeeping: the write is committed whatever this says
        self._next_try = 0.0 if rewound else self.clock() + CHECKPOINT_BACKOFF

    def change_marker(self, borrow: Callable[[], AbstractContextManager[Any]]) -> object:
        with borrow() as conn:
            return conn.execute("PRAGMA data_version").fetchone()[0]


def _wait_for_locks(conn: sqlite3.Connection, seconds: float) -> None:
    """How long ``conn`` waits for another connection's lock before 'database is locked'."""
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def _set_up(conn: sqlite3.Connection) -> None:
    _wait_for_locks(conn, BUSY_TIMEOUT)
    _with_retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL: see the module docstring
    conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA foreign_keys = ON")


def _with_retry(action: Any, tries: int = 50) -> Any:
    """Switching to WAL can report 'locked' at once while another process creates the file."""
    for attempt in range(tries):
        try:
            return action()
        except sqlite3.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(0.05)  # bounded: only on a fresh file opened by several processes at once
    return None


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the schema once; safe when several processes start on a new file at once."""
    if _user_version(conn) == SCHEMA_VERSION:
        return
    create_schema(
        conn,
        resource="sqlite.sql",
        begin=["BEGIN IMMEDIATE"],
        read_version=_user_version,
        stamp=lambda version: f"PRAGMA user_version = {int(version)}",
    )
