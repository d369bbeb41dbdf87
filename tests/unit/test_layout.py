"""The repository's layout stays what the README says: three processes on a shared core.

* No import cycle between any two modules of ``stq``, whatever hides the import:
  a function body, ``if TYPE_CHECKING:``, a package's ``__init__``.
* The README's "Layout" table names every module, and names nothing that is not there.
* ``stq/`` itself holds only the shared core and the packages, so nothing loose
  creeps back to the top level.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "stq"
#: The modules every process shares, the only ones allowed at the top of ``stq/``. A new
#: module belongs in the package of the process that uses it; one truly shared by all
#: three goes here and in the README's table.
SHARED_CORE = {"body_limit", "durations", "errors", "gc_pause", "model", "settings", "utf8"}
#: The packages directly under ``stq/``: the loader, the store, the three processes, data.
PACKAGES = {"api", "cli", "loader", "schemas", "store", "worker"}
#: A backticked name in the table: a path (``stq/model.py``, ``stq/worker/``) or a file name.
NAMED = re.compile(r"`([^`\s]+)`")

Graph = Mapping[str, Iterable[str]]


def module_name(path: Path, root: Path = ROOT) -> str:
    """``stq/cli/entry.py`` -> ``stq.cli.entry``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stq_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``stq`` by its dotted name."""
    return {module_name(p, root): p for p in sorted((root / "stq").rglob("*.py"))}


def imported(source: str, name: str, is_package: bool, modules: Iterable[str]) -> set[str]:
    """The ``modules`` the module ``name`` imports anywhere in ``source``.

    Every ``import`` statement counts, wherever it stands: a cycle through an
    import in a function or under ``TYPE_CHECKING`` still ties the two
    modules together. ``from stq.x import y`` imports the module ``stq.x.y``
    when there is one, else the package ``stq.x`` (a name its ``__init__``
    defines or re-exports). Loading ``stq.x.y`` also runs ``stq/x/__init__``;
    that is not counted, or every package that re-exports one of its own
    modules would be a cycle.
    """
    known = set(modules)
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of ``stq`` and the modules of ``stq`` it imports."""
    modules = stq_modules(root)
    return {
        name: imported(path.read_text(encoding="utf-8"), name, path.stem == "__init__", modules)
        for name, path in modules.items()
    }


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (a depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        on_path = {start}
        todo = [iter(sorted(graph[start]))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                todo.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                todo.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_every_import_counts_wherever_it_stands() -> None:
    modules = {"stq", "stq.api", "stq.api.render", "stq.api.context", "stq.store", "stq.x"}
    source = """
from typing import TYPE_CHECKING
from stq.api import render, NAME
import stq.x
if TYPE_CHECKING:
    from stq.api.context import Context
def later():
    from stq.store import open_store
"""
    found = imported(source, "stq.x", False, modules)
    assert found == {"stq.api.render", "stq.api", "stq.api.context", "stq.store"}
    assert imported("from . import render", "stq.api", True, modules) == {"stq.api.render"}


def test_no_module_of_stq_imports_itself_back() -> None:
    graph = import_graph()
    assert "stq.cli.parser" in graph["stq.cli.entry"]  # the graph is not empty by mistake
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def layout_table(readme: str) -> list[tuple[str, str]]:
    """The rows (where, what it owns) of the README's "## Layout" tables, headers left out."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str]] = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):  # the line under a header
            rows.pop()
        else:
            assert len(cells) == 2, f"a Layout row is | where | what it owns |: {line}"
            rows.append((cells[0], cells[1]))
    return rows


def named_modules(rows: list[tuple[str, str]]) -> tuple[set[Path], list[str]]:
    """The modules the table names, and each name in it that is not in the repository.

    The rule: a module is named by its path in the first column
    (``stq/model.py``), or by its file name anywhere in the row of its package
    (``client.py`` in the row of ``stq/worker/``). A package may have several
    rows. Every path, and every file or folder name in a package's row
    (``dashboard/``), must exist.
    """
    named: set[Path] = set()
    missing: list[str] = []
    for where, what in rows:
        for path in NAMED.findall(where):
            if not (ROOT / path).exists():
                missing.append(path)
            elif path.endswith(".py"):
                named.add(ROOT / path)
            elif path.startswith("stq/") and path.endswith("/"):
                for file in (f for f in NAMED.findall(what) if f.endswith((".py", "/"))):
                    if not (ROOT / path / file).exists():
                        missing.append(path + file)
                    elif file.endswith(".py"):
                        named.add(ROOT / path / file)
    return named, missing


def test_the_readme_layout_table_names_every_module_and_only_real_ones() -> None:
    rows = layout_table((ROOT / "README.md").read_text(encoding="utf-8"))
    named, missing = named_modules(rows)
    assert missing == [], f"the README's Layout table names what does not exist: {missing}"
    every = {p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    unnamed = sorted(str(p.relative_to(ROOT)) for p in every - named)
    assert unnamed == [], f"the README's Layout table does not name: {unnamed}"


def test_the_top_of_stq_holds_the_shared_core_and_the_packages_only() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    where = "only the shared core lives at the top of stq/: put it in its process's package"
    assert modules == SHARED_CORE, where
    assert folders == PACKAGES
