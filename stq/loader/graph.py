"""The dependency graph: unknown names, self dependencies and cycles.

Runs on the raw document (so it can report next to schema problems), looking
only at ``depends_on`` lists of strings. Cycle search is an iterative
depth-first search in file order, linear in tasks plus edges, so a
100,000-long chain cannot overflow a stack. Each back edge closes one cycle,
reported at that ``depends_on`` entry as ``a -> b -> c -> a`` where ``x -> y``
reads "x depends on y".
"""

from __future__ import annotations

from typing import Any

from stq.errors import Problem
from stq.loader.locate import Locator, readable

#: Cycles named one by one; past this, one line says how many more there are.
MAX_CYCLES_REPORTED = 100

_NEW, _OPEN, _DONE = 0, 1, 2


def _edges(tasks: dict[str, Any]) -> dict[str, list[str]]:
    """Each task's ``depends_on`` entries that are strings, in the order written."""
    edges: dict[str, list[str]] = {}
    for name, task in tasks.items():
        deps = task.get("depends_on") if isinstance(task, dict) else None
        edges[name] = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
    return edges


def graph_problems(tasks: dict[str, Any], where: Locator) -> list[Problem]:
    """Unknown and self dependencies, then every cycle the search closes."""
    edges = _edges(tasks)
    problems: list[Problem] = []
    for name, deps in edges.items():
        if deps and (name in deps or not all(dep in edges for dep in deps)):
            problems += _bad_names(name, tasks[name]["depends_on"], edges, where)
    if problems:
        edges = {
            name: [d for d in deps if d in edges and d != name] for name, deps in edges.items()
        }
    if _in_file_order(edges):
        return problems  # every dependency is written before its task: no cycle possible
    return problems + _cycle_problems(edges, tasks, where)


def _bad_names(
    name: str, deps: list[Any], edges: dict[str, list[str]], where: Locator
) -> list[Problem]:
    """The self and unknown dependencies of task ``name``, each at its list entry."""
    problems = []
    for index, dep in enumerate(deps):
        path = ["tasks", name, "depends_on", index]
        if dep == name:
            problems.append(where.problem(path, f"task {name!r} depends on itself"))
        elif isinstance(dep, str) and dep not in edges:
            problems.append(where.problem(path, f"unknown task {dep!r}"))
    return problems


def _in_file_order(edges: dict[str, list[str]]) -> bool:
    """Whether each task depends only on tasks written before it (the common case).

    A cycle needs an edge to a later task, so such a file has none and the
    search can be skipped: one dictionary look-up per edge instead of a walk.
    """
    position = {name: i for i, name in enumerate(edges)}
    return all(
        position[dep] < position[name] for name, deps in edges.items() if deps for dep in deps
    )


def _cycle_problems(
    edges: dict[str, list[str]], tasks: dict[str, Any], where: Locator
) -> list[Problem]:
    cycles = _find_cycles(edges)
    problems = []
    for closer, target, cycle in cycles[:MAX_CYCLES_REPORTED]:
        index = tasks[closer]["depends_on"].index(target)
        path = ["tasks", closer, "depends_on", index]
        problems.append(
            where.problem(path, "dependency cycle: " + " -> ".join(map(readable, cycle)))
        )
    if len(cycles) > MAX_CYCLES_REPORTED:
        more = len(cycles) - MAX_CYCLES_REPORTED
        problems.append(where.problem(["tasks"], f"{more} more dependency cycles not shown"))
    return problems


def _find_cycles(edges: dict[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    """``(task, dependency, cycle)`` for each back edge of an iterative DFS."""
    state = dict.fromkeys(edges, _NEW)
    depth: dict[str, int] = {}
    cycles = []
    for start in edges:
        if state[start] != _NEW:
            continue
        path = [start]
        stack = [(start, iter(edges[start]))]
        state[start], depth[start] = _OPEN, 0
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = _DONE
            elif state[child] == _OPEN:
                shown = len(cycles) < MAX_CYCLES_REPORTED
                cycles.append((node, child, [*path[depth[child] :], child] if shown else []))
            elif state[child] == _NEW:
                state[child], depth[child] = _OPEN, len(path)
                path.append(child)
                stack.append((child, iter(edges[child])))
    return cycles
