"""Where STQ keeps its state: ``open_store(url)`` picks the store for a URL or path.

A path (or ``sqlite:///path``) is a SQLite file, created on first use. A
``postgresql://`` URL needs the ``postgres`` extra.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

from stq.errors import StoreUnavailable, UsageError
from stq.store.base import Store

_PG_PREFIXES = ("postgresql://", "postgres://")
_SQLITE_PREFIX = "sqlite:///"


PG_HINT = "PostgreSQL support is not installed: pip install 'stq[postgres]'"


class PostgresNotInstalled(UsageError):
    """PostgreSQL support is not installed: pip install 'stq[postgres]'."""

    code = "postgres_not_installed"


def open_store(
    url: str, *, clock: Callable[[], float] = time.time, heartbeat_timeout: float = 60.0
) -> Store:
    """The store for ``url``, connected once in this thread so a bad path fails here."""
    from stq.store.sql import SqlStore
    from stq.store.sqlite import SqliteDialect

    path = sqlite_path(url)
    if path is None:
        return _open_postgres(url, clock, heartbeat_timeout)
    store = SqlStore(SqliteDialect(path), clock=clock, heartbeat_timeout=heartbeat_timeout)
    store.check()
    return store


def sqlite_path(url: str) -> str | None:
    """The SQLite file ``url`` names, or None for a PostgreSQL URL; else ``StoreUnavailable``."""
    if url.startswith(_PG_PREFIXES):
        return None
    path = url[len(_SQLITE_PREFIX) :] if url.startswith(_SQLITE_PREFIX) else url
    if not path or "://" in path:
        raise StoreUnavailable(f"Not a store path or URL: {url!r} (a file path or postgresql://)")
    return path


def _open_postgres(url: str, clock: Callable[[], float], heartbeat_timeout: float) -> Store:
    """The PostgreSQL store; its schema is created (under a lock) before the first request."""
    if (
        importlib.util.find_spec("psycopg") is None
        or importlib.util.find_spec("psycopg_pool") is None
    ):
        raise PostgresNotInstalled(PG_HINT)
    from stq.store.postgres import PostgresDialect
    from stq.store.sql import SqlStore

    dialect = PostgresDialect(url)
    dialect.ensure_schema()
    store = SqlStore(dialect, clock=clock, heartbeat_timeout=heartbeat_timeout)
    store.check()
    return store


__all__ = ["PostgresNotInstalled", "Store", "open_store"]
