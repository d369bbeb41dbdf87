"""``Connections``: how ``SqlStore`` gets a connection and runs one transaction on it.

Transactions borrow a connection from a pool: the dialect's own (PostgreSQL),
else this process's ``ConnectionPool`` of at most ``POOL_SIZE``, however many
threads the server runs. The one thing kept per thread is the connection a
thread reads the change marker on (SQLite's ``data_version`` counts the
commits of *other* connections, so it must be read on one connection that
never writes): taken on first use and given back when the thread ends, kept
for the next thread (up to ``SPARE_CONNECTIONS``), else closed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stq.errors import StoreUnavailable
from stq.store.dialect import ROLLBACK, Dialect
from stq.store.pool import ConnectionPool
from stq.store.statements import Name
from stq.store.tx import Tx

#: Marker connections kept, per process, for threads yet to come.
SPARE_CONNECTIONS = 16
#: Connections per process where the dialect has no pool of its own (SQLite).
POOL_SIZE = 16


class Connections:
    """The connections of one store in one process, and the transactions run on them."""

    def __init__(self, dialect: Dialect, clock: Callable[[], float]):
        self.dialect = dialect
        self.clock = clock
        self._local = threading.local()
        self._all: set[Any] = set()
        self._spare: list[tuple[int, Any]] = []  # (pid, connection) given back by ended threads
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Turn the driver's "the store does not answer" errors into ``StoreUnavailable``."""
        try:
            yield
        except self.dialect.unavailable_errors as ex:
            raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        """A connection for one transaction: the dialect's pool's, else this process's."""
        pooled = self.dialect.borrow()
        if pooled is None:
            pooled = self._own_pool().borrow()
        with pooled as conn:
            yield conn

    @contextmanager
    def transaction(self, begin: Name, writes: bool = False) -> Iterator[Tx]:
        """One transaction, started by the named ``begin``, committed unless it raises."""
        try:
            with self.borrow() as conn:
                self.dialect.execute(conn, begin)  # PostgreSQL: BEGIN and its lock, one trip
                try:
                    tx = Tx(conn, self.dialect, self.clock())
                    yield tx
                    tx.checked = self.dialect.commit(conn, tx.tail, tx.after)
                except BaseException:
                    self._rollback(conn)
                    raise
                if writes:  # committed: nothing from here on may roll it back
                    self.dialect.after_write(conn)
        except self.dialect.retry_errors:
            raise  # the caller runs the transaction again
        except self.dialect.unavailable_errors as ex:
            raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex

    def _rollback(self, conn: Any) -> None:
        """Roll back, unless the database already did (some errors end the transaction)."""
        try:
            self.dialect.execute(conn, ROLLBACK)
        except self.dialect.unavailable_errors:
            pass

    def _own_pool(self) -> ConnectionPool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():  # never share one across a fork
            with self._lock:
                if self._pool is None or self._pool.pid != os.getpid():
                    self._pool = ConnectionPool(self.dialect.connect, POOL_SIZE)
                pool = self._pool
        return pool

    # --- the thread's own connection, for the change marker ----------------------

    @contextmanager
    def marker(self) -> Iterator[Any]:
        """This thread's connection, which never writes (what ``Dialect.change_marker`` reads)."""
        yield self._conn()

    def note_commit(self) -> None:
        """This thread committed a write (its own commits move its change marker)."""
        self._local.commits = getattr(self._local, "commits", 0) + 1

    def commits(self) -> int:
        """How many writes this thread committed."""
        return getattr(self._local, "commits", 0)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never share one across a fork
            pid, conn = os.getpid(), None
            with self._lock:
                while self._spare and conn is None:
                    owner, spare = self._spare.pop()
                    conn = spare if owner == pid else None
            if conn is None:
                conn = self.dialect.connect()
                with self._lock:
                    self._all.add(conn)
            self._local.conn, self._local.commits, self._local.pid = conn, 0, pid
            self._local.give_back = _WhenThreadEnds(lambda: self._give_back(conn, pid))
        return conn

    def _give_back(self, conn: Any, pid: int) -> None:
        """A thread ended: keep its connection for the next thread, or close it."""
        if pid != os.getpid():
            return  # another process's: closing it here could drop that process's locks
        with self._lock:
            if conn in self._all and len(self._spare) < SPARE_CONNECTIONS:
                self._spare.append((pid, conn))
                return
            self._all.discard(conn)
        try:
            conn.close()
        except Exception:  # a broken connection may complain while closing; it is gone either way
            pass

    def close(self) -> None:
        """Close every connection this process opened, and the dialect's own."""
        with self._lock:
            conns, self._all, self._spare = self._all, set(), []
            pool, self._pool = self._pool, None
        for conn in conns:
            conn.close()
        if pool is not None:
            pool.close()
        self.dialect.close()
        self._local = threading.local()


class _WhenThreadEnds:
    """Kept in a thread's ``threading.local``: runs ``action`` when the thread ends."""

    __slots__ = ("action",)

    def __init__(self, action: Callable[[], None]):
        self.action = action

    def __del__(self) -> None:
        try:
            self.action()
        except Exception:  # at interpreter exit the store may be half torn down: nothing to keep
            pass
