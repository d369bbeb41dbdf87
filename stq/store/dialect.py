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


class Dialect:
    """The SQLite-or-PostgreSQL differences; subclasses fill them in."""

    #: Short name used in messages ("sqlite", "postgresql").
    name = "sql"
    #: Starts a transaction that will write (SQLite takes the write lock at once).
    begin_write = "BEGIN"
    #: Starts a write that no other write may run beside (cancel, retry, delete: rare,
    #: and touching many rows at once); on SQLite every write is one already.
    begin_exclusive = "BEGIN"
    #: Starts a read-only transaction, for a consistent snapshot across statements.
    begin_read = "BEGIN"
    #: Appended to queries for rows the transaction will change (PostgreSQL: FOR UPDATE).
    for_update = ""
    #: Appended to queries for rows to take unless another transaction holds them
    #: (PostgreSQL: FOR UPDATE SKIP LOCKED, for claims and expiry).
    skip_locked = ""
    #: Run before COMMIT by a write that may have made a task claimable, to wake
    #: long polls in other processes (PostgreSQL: NOTIFY); None: the marker sees commits.
    wake_statement: str | None = None
    #: ``Dialect.commit`` sends the transaction's last statements in one go.
    batches_commit = False
    #: Writes run one at a time (SQLite): counts read inside one are exact, and a
    #: claim looks read-only first, so an idle poll does not take a writer's turn.
    serial_writes = False
    #: Which row of a workflow's counters a write transaction adds its moves to.
    count_shard = "0"
    #: Driver exceptions after which the whole transaction is run again (a deadlock
    #: the database broke by aborting this side).
    retry_errors: tuple[type[BaseException], ...] = ()
    #: The DB-API placeholder style this driver wants ("?" or "%s").
    placeholder = "?"
    #: Driver exceptions that mean "the store does not answer" (locked, gone, I/O).
    unavailable_errors: tuple[type[BaseException], ...] = ()
    #: Run after a submit of many tasks, so the planner does not plan the next
    #: statements over statistics from before it (None: the dialect needs none).
    refresh_statistics: str | None = None
    #: A subquery of the ids passed in its one parameter (``ids_param``): one statement
    #: for any number of tasks (a failure may reach 100,000), at one plan.
    ids_query = ""

    def ids_param(self, ids: Sequence[int]) -> Any:
        """``ids`` as the parameter of ``ids_query``."""
        raise NotImplementedError

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

    def change_marker(self, borrow: Callable[[], AbstractContextManager[Any]]) -> object:
        """A value that changes after another connection commits (``borrow``: a connection)."""
        raise NotImplementedError

    def commit(self, conn: Any, tail: Sequence[str], after: Sequence[str]) -> list[Any]:
        """Run ``tail``, COMMIT, then the reads ``after``; the first row of each read.

        The statements carry literal values only (no parameters), so a dialect
        may send them all at once (PostgreSQL: one round trip).
        """
        for statement in tail:
            conn.execute(statement)
        conn.execute("COMMIT")
        return [conn.execute(statement).fetchone() for statement in after]

    def after_write(self, conn: Any) -> None:
        """Housekeeping after a write transaction committed on ``conn``; never raises."""

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
    begin: Sequence[str],
    read_version: Callable[[Any], int],
    stamp: Callable[[int], str],
    version: int = SCHEMA_VERSION,
) -> None:
    """Create or migrate the schema to ``version``, in one transaction that serializes starters.

    ``begin`` opens a transaction that holds out every other process starting
    at the same moment (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``BEGIN`` and an
    advisory lock), so the first one creates (or migrates) the tables and the
    others then find them done. A new store gets version 1 (``resource``) and
    then every migration, so new and migrated stores are the same. A store
    written by a newer STQ is refused rather than misread.
    """
    for statement in begin:
        conn.execute(statement)
    try:
        found = read_version(conn)
        if found > version:
            raise StqError(
                f"The store was written by a newer STQ (schema {found} > {version}): upgrade stq"
            )
        files = [resource] if found == 0 else []
        files += [MIGRATIONS[step] for step in range(max(found, 1) + 1, version + 1)]
        for name in files:
            for statement in schema_statements(name):
                conn.execute(statement)
        if found != version:
            conn.execute(stamp(version))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
