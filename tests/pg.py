"""PostgreSQL for the tests: a fresh database per test, cloned from a session template.

``STQ_TEST_PG`` (read at import, before conftest scrubs ``STQ_*``) names the
server; default ``postgresql://postgres@127.0.0.1:5432/test``. The template
holds STQ's schema, so a test's database is one ``CREATE DATABASE ...
TEMPLATE`` (a file copy, ~50 ms) and is dropped ``WITH (FORCE)`` afterwards.
Unreachable: the tests skip with one line, except in CI (``CI=true``), where
they fail, so a broken CI database can never pass silently.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("STQ_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_names = itertools.count()


def database_url(name: str) -> str:
    """``PG_URL`` pointing at database ``name``."""
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


def admin(sql: str) -> None:
    """Run one statement on the STQ_TEST_PG server (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _unreachable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'stq[postgres]')"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as ex:
        return f"PostgreSQL at {PG_URL} is not reachable: {str(ex).strip().splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database with STQ's schema, created once per session; its name."""
    reason = _unreachable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    from stq.store.postgres import PostgresDialect

    name = f"stq_tpl_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        dialect = PostgresDialect(database_url(name))
        dialect.ensure_schema()
        dialect.close()
        yield name
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def _scratch_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of ``template`` if given), dropped afterwards; its URL."""
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield database_url(name)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh database with STQ's schema, dropped after the test."""
    with _scratch_database("stq_t", pg_template) as url:
        yield url


@pytest.fixture
def pg_empty_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh database without any schema, dropped after the test."""
    with _scratch_database("stq_e") as url:
        yield url
