"""A process's own pool of database connections, for dialects without one (SQLite).

A server process may run a thousand threads at once (one per connected
runner), and a connection per thread would hold a thousand open files and
page caches. Transactions borrow one of at most ``size`` connections instead,
waiting for one to come back when all are lent: a transaction is
milliseconds long, so a few connections serve any number of threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class ConnectionPool:
    """Up to ``size`` connections from ``connect``, lent one per transaction, never closed
    until ``close``; one pool per process (a forked child builds its own)."""

    def __init__(self, connect: Callable[[], Any], size: int):
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self.pid = os.getpid()

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
                with self._lock:
                    self._all.append(conn)
            try:
                yield conn
            finally:
                with self._lock:
                    self._idle.append(conn)

    def close(self) -> None:
        """Close every connection (in the process that opened them only)."""
        with self._lock:
            conns, self._all, self._idle = self._all, [], []
        if self.pid != os.getpid():
            return  # another process's: closing here could drop that process's locks
        for conn in conns:
            conn.close()
