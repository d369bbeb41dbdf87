"""Named SQL: every statement the store runs, read once per process from ``queries/*.sql``.

SQL reads best as SQL, and a statement named in one place can be found,
reviewed and explained there. So no module of the store holds SQL text: each
declares the names it runs (``FIND = named("claim_peek_plain")``) and a
transaction looks the statement up in its dialect's ``queries``, ready to
run: nothing is pieced together per call.

The files are read with a line format of our own; the SQL in them is never
parsed::

    -- name: claim_take_plain
    -- The best unlabelled claimable task, locked unless another transaction takes it.
    {claim_first_plain} {skip_locked}

- ``-- name: x`` starts a statement the code runs; ``-- fragment: x`` a piece
  of SQL statements include as ``{x}`` (a column list, a dialect's lock
  clause). A statement may include another statement too.
- The line after the header is a comment saying what the entry is for.
  Further whole-line comments may explain it; they are left out of the text.
- The text runs to the next header, without a final ``;``. Placeholders are
  ``?``; a dialect whose driver wants another style gets them rewritten here.
- ``sqlite.sql`` and ``postgresql.sql`` belong to their dialect alone (its
  ``BEGIN``, its pragmas, and the fragments that differ: ``{for_update}``,
  ``{skip_locked}``, index hints); every other file belongs to both.

Everything is read and every include resolved, for every dialect, when this
module is imported; ``named`` refuses a name some dialect lacks when the
module using it is imported. A mistake in the files or a name misspelt in
code stops the import, not a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import NewType

#: A statement's name, checked to exist (``named``): what ``Tx.run`` takes instead of SQL.
Name = NewType("Name", str)

#: The dialects with a file of their own, by ``Dialect.name``.
DIALECTS = ("sqlite", "postgresql")
#: Where the files are, in this package.
FOLDER = "queries"

_HEADER = re.compile(r"--\s*(name|fragment):\s*(\S*)\s*")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")
_INCLUDE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class NamedSqlError(Exception):
    """The query files are malformed, or code names a statement they do not hold."""


@dataclass(frozen=True)
class Entry:
    """One named statement or fragment as written in its file."""

    kind: str  # "name" (a statement) or "fragment"
    name: str
    purpose: str
    text: str
    where: str  # "claim.sql:12", for messages


def parse(text: str, file: str) -> list[Entry]:
    """The entries of one file, in order; ``NamedSqlError`` at the first line out of place."""
    entries: list[Entry] = []
    head: tuple[str, str, int] | None = None
    purpose: str | None = None
    body: list[str] = []

    def close() -> None:
        if head is None:
            return
        kind, name, at = head
        if purpose is None:
            raise NamedSqlError(f"{file}:{at}: {name!r} has no comment line saying what it is for")
        sql = "\n".join(body).strip().removesuffix(";").rstrip()
        if kind == "name" and not sql:
            raise NamedSqlError(f"{file}:{at}: statement {name!r} is empty")
        entries.append(Entry(kind, name, purpose, sql, f"{file}:{at}"))

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = _HEADER.fullmatch(stripped)
        if header is not None:
            close()
            if not _IDENTIFIER.fullmatch(header.group(2)):
                raise NamedSqlError(f"{file}:{number}: not a name: {header.group(2)!r}")
            head, purpose, body = (header.group(1), header.group(2), number), None, []
        elif head is not None and purpose is None:
            said = stripped.removeprefix("--").strip()
            if not stripped.startswith("--") or not said:
                raise NamedSqlError(f"{file}:{number}: expected a comment saying what it is for")
            purpose = said
        elif stripped.startswith("--") or (head is None and not stripped):
            continue  # a comment explaining more; before the first header, the file's own
        elif head is None:
            raise NamedSqlError(f"{file}:{number}: SQL before the first '-- name:' header")
        else:
            body.append(line)
    close()
    return entries


def _read_files() -> dict[str, tuple[Entry, ...]]:
    folder = resources.files("stq.store").joinpath(FOLDER)
    files = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))
    return {name: tuple(parse(folder.joinpath(name).read_text("utf-8"), name)) for name in files}


#: Every file's entries, by file name.
FILES: Mapping[str, tuple[Entry, ...]] = MappingProxyType(_read_files())


def _scope(dialect: str) -> dict[str, Entry]:
    """The entries a dialect sees: every shared file's, and its own file's."""
    own = [f"{d}.sql" for d in DIALECTS if d != dialect]
    scope: dict[str, Entry] = {}
    for file, entries in FILES.items():
        if file in own:
            continue
        for entry in entries:
            first = scope.get(entry.name)
            if first is not None:
                raise NamedSqlError(f"{entry.where}: {entry.name!r} already at {first.where}")
            scope[entry.name] = entry
    return scope


def _render(dialect: str) -> tuple[dict[str, str], set[str]]:
    """Each statement of ``dialect`` with its includes written in; and what was included."""
    scope = _scope(dialect)
    done: dict[str, str] = {}
    included: set[str] = set()

    def resolve(name: str, chain: tuple[str, ...]) -> str:
        if name in done:
            return done[name]
        entry = scope[name]

        def include(match: re.Match[str]) -> str:
            part = match.group(1)
            if part not in scope:
                raise NamedSqlError(f"{entry.where}: {{{part}}} is not defined for {dialect}")
            if part in chain:
                raise NamedSqlError(f"{entry.where}: {{{part}}} includes itself")
            included.add(part)
            return resolve(part, (*chain, part))

        done[name] = _INCLUDE.sub(include, entry.text)
        return done[name]

    # Stripped: an empty fragment at the end (SQLite's lock clause) leaves no trailing
    # space, so the same statement is the same text, prepared once per connection.
    statements = {n: resolve(n, (n,)).strip() for n, e in scope.items() if e.kind == "name"}
    return statements, included


def _render_all() -> tuple[dict[str, dict[str, str]], frozenset[str]]:
    rendered, included = {}, set()
    for dialect in DIALECTS:
        rendered[dialect], seen = _render(dialect)
        included |= seen
    return rendered, frozenset(included)


_RENDERED, INCLUDED = _render_all()
_used: set[str] = set()


def named(name: str, dialect: str | None = None) -> Name:
    """``name``, once every dialect (or only ``dialect``) is known to have that statement."""
    if dialect is not None and dialect not in DIALECTS:
        raise NamedSqlError(f"No dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    for each in DIALECTS if dialect is None else (dialect,):
        if name not in _RENDERED[each]:
            raise NamedSqlError(f"No statement named {name!r} for {each} in stq/store/{FOLDER}")
    _used.add(name)
    return Name(name)


def used() -> frozenset[str]:
    """Every name ``named`` has given out in this process (the modules imported so far)."""
    return frozenset(_used)


@cache
def for_dialect(dialect: str, placeholder: str = "?") -> Mapping[Name, str]:
    """Every statement of ``dialect``, ready to run with ``placeholder`` parameters (once)."""
    ready = dict(_RENDERED[dialect])
    if placeholder != "?":  # a "%s" driver reads "%" as the start of a placeholder
        ready = {n: s.replace("%", "%%").replace("?", placeholder) for n, s in ready.items()}
    return MappingProxyType({Name(n): s for n, s in ready.items()})
