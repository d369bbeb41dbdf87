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
  and rewinds the WAL, waiting at most a few milliseconds
  (``sqlite_wait_briefly``). While a long read keeps the WAL from being
  rewound, that wait would hold every writer back each time, so a process
  that could not rewind tries again only after ``CHECKPOINT_BACKOFF``.
  SQLite's own checkpoint stays on (``sqlite_autocheckpoint``) for large
  writes.

The statements are in queries/sqlite.sql: pragmas take no parameters, so
the numbers they set are written there.
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
from stq.store.statements import Name, named

#: Seconds a connection waits for another one's write lock before giving up
#: (also set, in milliseconds, by ``sqlite_wait_long``).
BUSY_TIMEOUT = 30.0
#: Write commits of one process between two of its checkpoints.
CHECKPOINT_EVERY = 100
#: Seconds before a process tries again after a checkpoint that could not rewind the
#: WAL (a long read holds it): each try holds writers back for ``sqlite_wait_briefly``.
CHECKPOINT_BACKOFF = 0.5


def _named(name: str) -> Name:
    return named(name, dialect="sqlite")


BEGIN_IMMEDIATE = _named("sqlite_begin_immediate")
DATA_VERSION = _named("sqlite_data_version")
USER_VERSION = _named("sqlite_user_version")
STAMP_SCHEMA = _named("sqlite_stamp_schema")
WAIT_LONG = _named("sqlite_wait_long")
WAIT_BRIEFLY = _named("sqlite_wait_briefly")
JOURNAL_WAL = _named("sqlite_journal_wal")
CHECKPOINT_PASSIVE = _named("sqlite_checkpoint_passive")
CHECKPOINT_RESTART = _named("sqlite_checkpoint_restart")
#: Run on every new connection after it waits for locks and is in WAL mode.
SET_UP = (
    _named("sqlite_synchronous_normal"),  # safe in WAL: see the module docstring
    _named("sqlite_autocheckpoint"),
    _named("sqlite_foreign_keys"),
)


class SqliteDialect(Dialect):
    """SQLite through the standard library's ``sqlite3``."""

    name = "sqlite"
    begin_write = BEGIN_IMMEDIATE
    begin_exclusive = BEGIN_IMMEDIATE
    serial_writes = True
    begin_read = _named("sqlite_begin_deferred")
    unavailable_errors = (sqlite3.OperationalError, sqlite3.DatabaseError)

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
            self._set_up(conn)
            if not self._schema_ready:
                self._ensure_schema(conn)
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

    def after_write(self, conn: sqlite3.Connection) -> None:
        """Every ``CHECKPOINT_EVERY`` writes of this process, empty and rewind the WAL."""
        if next(self._writes) % CHECKPOINT_EVERY or self.clock() < self._next_try:
            return
        rewound = False
        try:
            self.execute(conn, WAIT_BRIEFLY)
            try:
                self.execute(conn, CHECKPOINT_PASSIVE).fetchone()
                busy = self.execute(conn, CHECKPOINT_RESTART).fetchone()[0]
                rewound = not busy
            finally:
                self.execute(conn, WAIT_LONG)
        except sqlite3.Error:
            pass  # housekeeping: the write is committed whatever this says
        self._next_try = 0.0 if rewound else self.clock() + CHECKPOINT_BACKOFF

    def change_marker(self, borrow: Callable[[], AbstractContextManager[Any]]) -> object:
        with borrow() as conn:
            return self.execute(conn, DATA_VERSION).fetchone()[0]

    def _set_up(self, conn: sqlite3.Connection) -> None:
        self.execute(conn, WAIT_LONG)
        _with_retry(lambda: self.execute(conn, JOURNAL_WAL).fetchone())
        for name in SET_UP:
            self.execute(conn, name)

    def _user_version(self, conn: sqlite3.Connection) -> int:
        return int(self.execute(conn, USER_VERSION).fetchone()[0])

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Create the schema once; safe when several processes start on a new file at once."""
        if self._user_version(conn) == SCHEMA_VERSION:
            return
        create_schema(
            conn,
            self,
            resource="sqlite.sql",
            begin=BEGIN_IMMEDIATE,
            read_version=self._user_version,
            stamp=(STAMP_SCHEMA, ()),
        )


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
