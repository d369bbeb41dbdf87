"""What differs between SQL databases, kept small so the rules are written once.

``SqlStore`` holds every rule; a ``Dialect`` only says how to connect, which
named statements begin its transactions, how its commit is sent, and how to
create the schema. Every statement is named in ``queries/*.sql``
(``stq.store.statements``); where the dialects write SQL differently (a row
lock clause, an index hint), the difference is a fragment each dialect's own
file defines, written into the statements once, when they are loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from importlib import resources
from typing import Any

from stq.errors import StqError
from stq.store.statements import Name, for_dialect, named

#: The schema version this code writes (SQLite: PRAGMA user_version; PostgreSQL:
#: stq_schema.version). Version 1 is each dialect's own file; every later
#: version is a file of statements both dialects run, applied in order.
SCHEMA_VERSION = 7
MIGRATIONS = {
    2: "2-workflow-count.sql",
    3: "3-claimed-after.sql",
    4: "4-submission.sql",
    5: "5-runner.sql",
    6: "6-output-offsets.sql",
    7: "7-run-if.sql",
}

COMMIT = named("commit")
ROLLBACK = named("rollback")

#: A statement to run with its parameters (``Tx.defer``, ``Tx.after``).
Call = tuple[Name, Sequence[Any]]


class Dialect:
    """The SQLite-or-PostgreSQL differences; subclasses fill them in."""

    #: Short name used in messages ("sqlite", "postgresql"), and its queries file's.
    name = "sql"
    #: Starts a transaction that will write (SQLite takes the write lock at once).
    begin_write: Name
    #: Starts a write that no other write may run beside (cancel, retry, delete: rare,
    #: and touching many rows at once); on SQLite every write is one already.
    begin_exclusive: Name
    #: Starts a read-only transaction, for a consistent snapshot across statements.
    begin_read: Name
    #: Run before COMMIT by a write that may have made a task claimable, to wake
    #: long polls in other processes (PostgreSQL: NOTIFY); None: the marker sees commits.
    wake: Name | None = None
    #: ``Dialect.commit`` sends the transaction's last statements in one go.
    batches_commit = False
    #: Writes run one at a time (SQLite): counts read inside one are exact, and a
    #: claim looks read-only first, so an idle poll does not take a writer's turn.
    serial_writes = False
    #: Driver exceptions after which the whole transaction is run again (a deadlock
    #: the database broke by aborting this side).
    retry_errors: tuple[type[BaseException], ...] = ()
    #: The DB-API placeholder style this driver wants ("?" or "%s").
    placeholder = "?"
    #: Driver exceptions that mean "the store does not answer" (locked, gone, I/O).
    unavailable_errors: tuple[type[BaseException], ...] = ()
    #: Run after a submit of many tasks, so the planner does not plan the next
    #: statements over statistics from before it (None: the dialect needs none).
    refresh_statistics: Name | None = None

    @cached_property
    def queries(self) -> Mapping[Name, str]:
        """This dialect's statements by name, ready to run (loaded once per process)."""
        return for_dialect(self.name, self.placeholder)

    def execute(self, conn: Any, name: Name, params: Sequence[Any] | None = None) -> Any:
        """Run the named statement on ``conn``; without ``params``, as it is written."""
        text = self.queries[name]
        return conn.execute(text) if params is None else conn.execute(text, params)

    def ids_param(self, ids: Sequence[int]) -> Any:
        """``ids`` as the parameter of the ``{ids}`` fragment."""
        raise NotImplementedError

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

    def change_marker(self, borrow: Callable[[], AbstractContextManager[Any]]) -> object:
        """A value that changes after another connection commits (``borrow``: a connection)."""
        raise NotImplementedError

    def commit(self, conn: Any, tail: Sequence[Call], after: Sequence[Call]) -> list[Any]:
        """Run ``tail``, COMMIT, then the reads ``after``; the first row of each read.

        A dialect may send them all at once (PostgreSQL: one round trip).
        """
        for name, params in tail:
            self.execute(conn, name, params)
        self.execute(conn, COMMIT)
        return [self.execute(conn, name, params).fetchone() for name, params in after]

    def after_write(self, conn: Any) -> None:
        """Housekeeping after a write transaction committed on ``conn``; never raises."""


def schema_statements(resource: str) -> list[str]:
    """The statements of a packaged schema file, split at a ``;`` ending a line."""
    text = resources.files("stq.store").joinpath("schema", resource).read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in body.split(";\n") if part.strip().rstrip(";")]


def create_schema(
    conn: Any,
    dialect: Dialect,
    *,
    resource: str,
    begin: Name,
    read_version: Callable[[Any], int],
    stamp: Call,
) -> None:
    """Create or migrate the schema to ``SCHEMA_VERSION``, in one transaction that serializes
    starters.

    ``begin`` opens a transaction that holds out every other process starting
    at the same moment (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``BEGIN`` and an
    advisory lock), so the first one creates (or migrates) the tables and the
    others then find them done. A new store gets version 1 (``resource``) and
    then every migration, so new and migrated stores are the same; ``stamp``
    then records the version. A store written by a newer STQ is refused
    rather than misread.
    """
    dialect.execute(conn, begin)
    try:
        found = read_version(conn)
        if found > SCHEMA_VERSION:
            raise StqError(
                f"The store was written by a newer STQ (schema {found} > {SCHEMA_VERSION}): "
                "upgrade stq"
            )
        files = [resource] if found == 0 else []
        files += [MIGRATIONS[step] for step in range(max(found, 1) + 1, SCHEMA_VERSION + 1)]
        for name in files:
            for statement in schema_statements(name):
                conn.execute(statement)
        if found != SCHEMA_VERSION:
            dialect.execute(conn, *stamp)
        dialect.execute(conn, COMMIT)
    except BaseException:
        dialect.execute(conn, ROLLBACK)
        raise
