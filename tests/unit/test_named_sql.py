"""The store's SQL lives in ``stq/store/queries/*.sql``, by name, and nowhere else.

Every name the code runs is in the files, every statement and fragment in
the files is used, every entry says what it is for, and no module of the
store writes SQL text of its own, let alone pieces it together per call.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import stq.store
from stq.model import TaskState
from stq.store import statements
from stq.store.statements import FILES, NamedSqlError, for_dialect, parse

STORE = Path(stq.store.__file__).parent
#: Words that start, or only occur in, SQL statements (upper case, as the files write them).
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|BEGIN|COMMIT|ROLLBACK|NOTIFY|LISTEN|ANALYZE"
    r"|FOR UPDATE|INDEXED BY|WHERE)\b"
)


def _import_every_store_module() -> None:
    for module in pkgutil.iter_modules([str(STORE)]):
        importlib.import_module(f"stq.store.{module.name}")


def _entries(kind: str) -> set[str]:
    return {e.name for entries in FILES.values() for e in entries if e.kind == kind}


def _store_sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in STORE.glob("*.py")}


def _named_calls(tree: ast.Module) -> list[ast.Call]:
    """Every ``named(...)`` (or a dialect module's ``_named(...)``) but the one inside
    ``_named`` itself."""
    helpers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_named"]
    inside = {id(node) for helper in helpers for node in ast.walk(helper)}
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("named", "_named")
        and id(node) not in inside
    ]


def test_every_name_the_code_runs_is_in_the_files() -> None:
    _import_every_store_module()  # ``named`` would have refused a missing name here
    for path, tree in _store_sources().items():
        for call in _named_calls(tree):
            arg = call.args[0] if call.args else None
            where = f"{path.name}:{call.lineno}"
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), where
            assert arg.value in statements.used(), where


def test_a_missing_name_fails_when_it_is_declared() -> None:
    with pytest.raises(NamedSqlError, match="no_such_statement"):
        statements.named("no_such_statement")
    with pytest.raises(NamedSqlError, match=r"pg_begin_write.*sqlite"):
        statements.named("pg_begin_write", dialect="sqlite")


def test_every_statement_and_fragment_in_the_files_is_used() -> None:
    _import_every_store_module()
    assert _entries("name") - statements.used() == set(), "statements no code runs"
    assert _entries("fragment") - statements.INCLUDED == set(), "fragments nothing includes"


def test_every_name_given_out_is_run_by_the_code_that_declares_it() -> None:
    """A module-level ``X = named(...)`` that nothing reads is dead SQL too."""
    trees = _store_sources()
    loaded = {
        node.id
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    loaded |= {
        node.attr
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
    }
    for path, tree in trees.items():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if node.value in _named_calls(tree):
                    for target in node.targets:
                        assert isinstance(target, ast.Name), path.name
                        assert target.id in loaded, f"{path.name}: {target.id} is never read"


def test_every_entry_says_what_it_is_for() -> None:
    assert FILES, "no query files were found in the package"
    for entries in FILES.values():
        for entry in entries:
            assert entry.purpose.strip(), entry.where


def test_a_header_without_its_purpose_line_is_refused() -> None:
    with pytest.raises(NamedSqlError, match=r"x\.sql:2: expected a comment"):
        parse("-- name: one\nSELECT 1\n", "x.sql")
    with pytest.raises(NamedSqlError, match=r"x\.sql:1: 'two' has no comment"):
        parse("-- name: two\n", "x.sql")
    with pytest.raises(NamedSqlError, match=r"x\.sql:1: SQL before"):
        parse("SELECT 1\n-- name: three\n-- Three.\nSELECT 3\n", "x.sql")


def test_the_format_is_read_as_documented() -> None:
    entries = parse(
        "-- The file's own comment.\n\n"
        "-- name: one\n-- What one is for.\n-- More about it.\nSELECT 1\n  FROM t;\n\n"
        "-- fragment: nothing\n-- Empty on this dialect.\n",
        "x.sql",
    )
    assert [(e.kind, e.name, e.purpose, e.text) for e in entries] == [
        ("name", "one", "What one is for.", "SELECT 1\n  FROM t"),
        ("fragment", "nothing", "Empty on this dialect.", ""),
    ]


def _sql_text(node: ast.AST) -> str:
    """The literal text of a string constant or f-string, else ''."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_sql_text(v) for v in node.values)
    return ""


def _docstrings(tree: ast.Module) -> set[int]:
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def test_no_module_of_the_store_writes_or_pieces_together_sql() -> None:
    found = []
    for path, tree in _store_sources().items():
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.JoinedStr) and SQL_WORDS.search(_sql_text(node)):
                found.append(f"{where}: an f-string of SQL")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "format" and SQL_WORDS.search(_sql_text(node.func.value)):
                    found.append(f"{where}: str.format of SQL")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
                if any(SQL_WORDS.search(_sql_text(side)) for side in (node.left, node.right)):
                    found.append(f"{where}: SQL put together with an operator")
            elif isinstance(node, ast.Constant) and id(node) not in docs:
                if SQL_WORDS.search(_sql_text(node)):
                    found.append(f"{where}: SQL text outside queries/: {node.value!r}")
    assert not found, "\n".join(found)


def test_postgresql_gets_its_placeholders_once_at_load() -> None:
    sqlite, postgres = for_dialect("sqlite"), for_dialect("postgresql", "%s")
    assert for_dialect("postgresql", "%s") is postgres  # loaded once per process
    assert "?" not in "".join(postgres.values())
    add = postgres[statements.named("add_counts")]
    assert "pg_backend_pid() %% 64" in add and add.count("%s") == 5
    plain = statements.named("claim_first_plain")
    assert "INDEXED BY task_claimable_plain" in sqlite[plain]
    assert "INDEXED BY" not in postgres[plain]
    # SQLite's lock clause is empty: the locked statement is the same text, prepared once.
    assert sqlite[statements.named("claim_take_plain")] == sqlite[plain]


def test_numbers_written_into_the_files_match_the_code() -> None:
    """Pragmas and the advisory lock of ``BEGIN``'s round trip cannot take parameters."""
    from stq.store.dialect import SCHEMA_VERSION
    from stq.store.postgres import WRITE_LOCK
    from stq.store.sqlite import BUSY_TIMEOUT

    sqlite, postgres = for_dialect("sqlite"), for_dialect("postgresql")
    assert sqlite[statements.named("sqlite_stamp_schema", "sqlite")].endswith(
        f"= {SCHEMA_VERSION}"
    )
    assert sqlite[statements.named("sqlite_wait_long", "sqlite")].endswith(
        f"= {int(BUSY_TIMEOUT * 1000)}"
    )
    for begin in ("pg_begin_write", "pg_begin_exclusive"):
        assert f"({WRITE_LOCK})" in postgres[statements.named(begin, "postgresql")]


def test_counts_are_written_in_task_state_order() -> None:
    """``records.counts_from`` and ``apply_counts`` read and write them in that order."""
    order = [f"n_{s.value}" for s in TaskState]
    sqlite = for_dialect("sqlite")
    for name in ("add_counts", "state_and_counts", "task_counts"):
        text = sqlite[statements.named(name)]
        places = [text.index(column) for column in order]
        assert places == sorted(places), name
