"""What differs between SQL databases, kept small so the rules are written once.

``SqlStore`` holds every query and rule; a ``Dialect`` only says how to
connect, how to begin a write transaction, how parameters are written, how to
lock claim candidates, and how to create the schema. SQL in STQ is written
with ``?`` placeholders; a dialect with another style rewrites them once per
statement (and caches the result).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from importlib import resources
from typing import Any

from stq.errors import StqError


class Dialect:
    """The SQLite-or-PostgreSQL differences; subclasses fill them in."""

    #: Short name used in messages ("sqlite", "postgresql").
    name = "sql"
    #: Starts a transaction that will write (SQLite takes the write lock at once).
    begin_write = "BEGIN"
    #: Starts a read-only transaction, for a consistent snapshot across statements.
    begin_read = "BEGIN"
    #: Appended to the claim's candidate query (PostgreSQL: FOR UPDATE SKIP LOCKED).
    lock_candidate = ""
    #: The DB-API placeholder style this driver wants ("?" or "%s").
    placeholder = "?"
    #: Driver exceptions that mean "the store does not answer" (locked, gone, I/O).
    unavailable_errors: tuple[type[BaseException], ...] = ()

    def use_index(self, index: str) -> str:
        """A hint forcing ``index`` after a table name where the planner must not guess."""
        return ""

    def connect(self) -> Any:
        """A new autocommit connection, set up; the schema already exists."""
        raise NotImplementedError

    def borrow(self) -> AbstractContextManager[Any] | None:
        """A pooled connection for one transaction, or None: one connection per thread."""
        return None

    def close(self) -> None:
        """Release what the dialect holds beyond the store's connections (a pool)."""

    def clean_text(self, text: str) -> str:
        """``text`` as this database can store it (PostgreSQL text cannot hold NUL)."""
        return text

    def change_marker(self, conn: Any) -> object:
        """A value that changes after another connection commits."""
        raise NotImplementedError

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders rewritten to this driver's style."""
        return text if self.placeholder == "?" else _rewrite(text, self.placeholder)


@lru_cache(maxsize=512)
def _rewrite(text: str, placeholder: str) -> str:
    return text.replace("%", "%%").replace("?", placeholder)


def schema_statements(resource: str) -> list[str]:
    """The statements of a packaged schema file, split at a ``;`` ending a line."""
    text = resources.files("stq.store").joinpath("schema", resource).read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in body.split(";\n") if part.strip().rstrip(";")]


def create_schema(
    conn: Any,
    *,
    resource: str,
    version: int,
    begin: Sequence[str],
    read_version: Callable[[Any], int],
    stamp: str,
) -> None:
    """Create the packaged schema once, inside one transaction that serializes starters.

    ``begin`` opens a transaction that holds out every other process starting
    at the same moment (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``BEGIN`` and an
    advisory lock), so the first one creates the tables and the others then
    find them. A store written by a newer STQ is refused rather than misread.
    """
    for statement in begin:
        conn.execute(statement)
    try:
        found = read_version(conn)
        if found == 0:
            for statement in schema_statements(resource):
                conn.execute(statement)
            conn.execute(stamp)
        elif found > version:
            raise StqError(
                f"The store was written by a newer STQ (schema {found} > {version}): upgrade stq"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
