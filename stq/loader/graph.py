"""The dependency graph: its size, unknown names, self dependencies and cycles.

Runs on the raw document (so it can report next to schema problems), looking
only at ``depends_on`` lists of strings. The graph checked is the one the
store will run: matrix tasks expanded (``stq.loader.matrix``), a matrix
task's name standing for all of its expansions. Its size is checked first,
before anything is expanded: at most ``MAX_TASKS`` tasks and ``MAX_EDGES``
dependencies. Each problem is reported where it is written, at the
``depends_on`` entry that names an unknown task, the task itself, or the
dependency that closes a cycle, however many expanded edges it makes.

Cycles are found by their strongly connected components (an iterative
search, linear in tasks plus edges, so a 100,000-long chain cannot overflow
a stack). One mistaken ``depends_on`` entry can close many cycles; it is
reported once, at that entry: the edge that goes against the order the rest
of the file is written in (see ``_closing_edges``), naming a shortest cycle
through it as ``a -> b -> c -> a`` where ``x -> y`` reads "x depends on y"
(with expanded names: ``d-1 -> e-1 -> d-1``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from stq.errors import Problem
from stq.loader.locate import Locator, readable
from stq.loader.matrix import MAX_TASKS, Plan

#: Dependencies (edges of the graph) a workflow may have once its matrices are expanded.
MAX_EDGES = 1_000_000
#: Cycles named one by one; past this, one line says how many more there are.
MAX_CYCLES_REPORTED = 100
#: Edges the search for the cycles' names may look at, per task and edge of the graph.
CYCLE_SEARCH_BUDGET = 4


def _edges(tasks: dict[str, Any]) -> dict[str, list[str]]:
    """Each task's ``depends_on`` entries that are strings, in the order written."""
    edges: dict[str, list[str]] = {}
    for name, task in tasks.items():
        deps = task.get("depends_on") if isinstance(task, dict) else None
        edges[name] = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
    return edges


def graph_problems(
    tasks: dict[str, Any], plan: Plan, where: Locator
) -> tuple[list[Problem], dict[str, list[str]]]:
    """The graph's problems, and each task's dependencies with matrices expanded.

    The dependencies are keyed by expanded task name, in the order the store
    will hold the tasks; they are meant for a document with no problems.
    """
    written = _edges(tasks)
    problems = _size_problems(written, plan, where)
    if problems or plan.overflow:
        return problems, {}
    unfit = [
        name
        for name, deps in written.items()
        # the common case first, inline: every entry is another task written in the file
        if deps
        and (name in deps or not all(dep in written for dep in deps))
        and not all(_fine(name, dep, written, plan) for dep in deps)
    ]
    for name in unfit:
        problems += _bad_names(name, tasks[name]["depends_on"], written, plan, where)
    if unfit:
        written = {
            name: [d for d in deps if _fine(name, d, written, plan)]
            for name, deps in written.items()
        }
    edges = _expand(written, plan) if plan.expansions else written
    if _in_file_order(edges):
        return problems, edges  # every dependency is written before its task: no cycle
    tangled = _tangled(edges)
    if not tangled:
        return problems, edges
    return problems + _cycle_problems(edges, tangled, tasks, plan, where), edges


def _size_problems(written: dict[str, list[str]], plan: Plan, where: Locator) -> list[Problem]:
    """Too many tasks or dependencies once expanded: counted without expanding anything."""
    tasks = plan.total
    if not plan.sizes:
        edges = sum(map(len, written.values()))
    else:
        edges = sum(plan.count(name) * _fan_in(deps, plan) for name, deps in written.items())
    problems = []
    if tasks > MAX_TASKS >= len(written):  # the schema counts the tasks as written
        problems.append(
            where.problem(
                ["tasks"],
                f"has {tasks} tasks once matrices are expanded, "
                f"more than the limit of {MAX_TASKS}",
            )
        )
    if edges > MAX_EDGES:
        problems.append(
            where.problem(
                ["tasks"],
                f"has {edges} dependencies once matrices are expanded, "
                f"more than the limit of {MAX_EDGES}",
            )
        )
    return problems


def _fan_in(deps: list[str], plan: Plan) -> int:
    """How many tasks ``deps`` names once expanded (an expansion of a named matrix counts once)."""
    count = 0
    named: set[str] | None = None
    for dep in deps:
        owner = plan.owner.get(dep)
        if owner is None:
            count += plan.count(dep)
            continue
        if named is None:
            named = set(deps)
        count += owner not in named
    return count


def _fine(name: str, dep: str, written: dict[str, list[str]], plan: Plan) -> bool:
    """Whether ``dep`` names other tasks: not the task itself, not nothing."""
    if dep == name:
        return False
    if dep in written:
        return True
    owner = plan.owner.get(dep)
    return owner is not None and owner != name


def _bad_names(
    name: str, deps: list[Any], written: dict[str, list[str]], plan: Plan, where: Locator
) -> list[Problem]:
    """The self and unknown dependencies of task ``name``, each at its list entry."""
    problems = []
    for index, dep in enumerate(deps):
        if not isinstance(dep, str) or _fine(name, dep, written, plan):
            continue
        path = ["tasks", name, "depends_on", index]
        if dep == name:
            problems.append(where.problem(path, f"task {name!r} depends on itself"))
        elif dep in plan.owner:
            problems.append(
                where.problem(
                    path, f"{dep!r} is an expansion of this task: it would depend on itself"
                )
            )
        elif not plan.vague(dep):
            problems.append(where.problem(path, f"unknown task {dep!r}"))
    return problems


def _expand(written: dict[str, list[str]], plan: Plan) -> dict[str, list[str]]:
    """Each expanded task's dependencies: a matrix task's name becomes its expansions.

    The expansions of one matrix task share one list: they depend on the same tasks.
    """
    edges: dict[str, list[str]] = {}
    for name, deps in written.items():
        targets = []
        overlap = False
        for dep in deps:
            group = plan.expansions.get(dep)
            if group:
                targets += [expansion.name for expansion in group]
            else:
                targets.append(dep)
                overlap = overlap or dep in plan.owner
        if overlap:  # [test, test-311]: test-311 once
            targets = list(dict.fromkeys(targets))
        for expanded in plan.names(name):
            edges[expanded] = targets
    return edges


def _in_file_order(edges: dict[str, list[str]]) -> bool:
    """Whether each task depends only on tasks written before it (the common case).

    A cycle needs an edge to a later task, so such a file has none and the
    search can be skipped: one dictionary look-up per edge instead of a walk.
    """
    position = {name: i for i, name in enumerate(edges)}
    return all(
        position[dep] < position[name] for name, deps in edges.items() if deps for dep in deps
    )


def _tangled(edges: dict[str, list[str]]) -> set[str]:
    """The tasks on a cycle or depending on one: those no order of the tasks can place.

    Kahn's algorithm, one pass over the edges: cheaper than the components,
    so a file with no cycle costs only this, and the search for cycles
    looks at what is left.
    """
    waiting = {name: len(deps) for name, deps in edges.items()}
    dependents: dict[str, list[str]] = {name: [] for name in edges}
    for name, deps in edges.items():
        for dep in deps:
            dependents[dep].append(name)
    placed = [name for name, count in waiting.items() if not count]
    for name in placed:  # the list grows while it is read
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if not waiting[dependent]:
                placed.append(dependent)
    return {name for name, count in waiting.items() if count}


def _cycle_problems(
    edges: dict[str, list[str]],
    tangled: set[str],
    tasks: dict[str, Any],
    plan: Plan,
    where: Locator,
) -> list[Problem]:
    """One problem per ``depends_on`` entry that closes cycles, naming one it closes."""
    knot = {name: [d for d in edges[name] if d in tangled] for name in edges if name in tangled}
    component = _components(knot)
    closers = _by_entry(_closing_edges(edges, knot, component), tasks, plan)
    budget = CYCLE_SEARCH_BUDGET * sum(len(deps) + 1 for deps in knot.values())
    problems = []
    for path, (task, dep) in list(closers.items())[:MAX_CYCLES_REPORTED]:
        cycle, cost = _cycle_through(knot, component, task, dep, budget)
        budget -= cost
        if cycle is None:
            break
        problems.append(
            where.problem(path, "dependency cycle: " + " -> ".join(map(readable, cycle)))
        )
    if len(closers) > len(problems):
        more = len(closers) - len(problems)
        problems.append(where.problem(["tasks"], f"{more} more dependency cycles not shown"))
    return problems


def _by_entry(
    closers: list[tuple[str, str]], tasks: dict[str, Any], plan: Plan
) -> dict[tuple[str | int, ...], tuple[str, str]]:
    """The first closing edge of each ``depends_on`` entry, keyed by the entry's path.

    A matrix makes many edges of one entry (``depends_on: [test]`` is an edge
    to each expansion, from each expansion): one mistake, one problem.
    """
    indexes: dict[str, dict[str, int]] = {}
    by_entry: dict[tuple[str | int, ...], tuple[str, str]] = {}
    for task, dep in closers:
        written = plan.owner.get(task, task)
        index = indexes.get(written)
        if index is None:
            deps = tasks[written]["depends_on"]
            index = indexes[written] = {
                d: i for i, d in reversed(list(enumerate(deps))) if isinstance(d, str)
            }
        at = index[dep] if dep in index else index[plan.owner[dep]]
        by_entry.setdefault(("tasks", written, "depends_on", at), (task, dep))
    return by_entry


def _components(edges: dict[str, list[str]]) -> dict[str, int]:
    """Each task's strongly connected component (Tarjan's, iterative).

    Two tasks share one exactly when a cycle passes through both, so an edge
    inside a component is on a cycle and one between components never is.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in edges:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = index[node]
                    if member == node:
                        break
    return component


def _closing_edges(
    edges: dict[str, list[str]], knot: dict[str, list[str]], component: dict[str, int]
) -> list[tuple[str, str]]:
    """``(task, dependency)`` edges of ``knot`` on a cycle that go against the file's order.

    Most files write a task's dependencies before it (some all after it): the
    direction most edges take is the file's order, the first edge's in a tie.
    Every cycle has an edge against it, and the line a person adds by mistake
    is usually that one, so each is reported where it is written: one problem
    for one mistake, however many cycles it makes. Removing them all leaves
    no cycle, since what is left follows the file's order.
    """
    position = {name: i for i, name in enumerate(edges)}
    pairs = [(task, dep) for task, deps in edges.items() for dep in deps]
    later = sum(position[dep] > position[task] for task, dep in pairs)
    earlier = len(pairs) - later
    first_later = position[pairs[0][1]] > position[pairs[0][0]]
    deps_first = earlier > later or (earlier == later and not first_later)
    closers = {
        (task, dep): None
        for task, deps in knot.items()
        for dep in deps
        if component[task] == component[dep] and (position[dep] > position[task]) == deps_first
    }
    return list(closers)


def _cycle_through(
    edges: dict[str, list[str]], component: dict[str, int], task: str, dep: str, budget: int
) -> tuple[list[str] | None, int]:
    """A shortest cycle ``dep -> ... -> task -> dep`` and the edges looked at to find it.

    A breadth-first search from ``dep`` back to ``task``, inside their
    component; None when it would look at more than ``budget`` edges, which
    bounds the time a hostile document can cost to a few passes over it.
    """
    parent: dict[str, str | None] = {dep: None}
    queue = deque([dep])
    own = component[task]
    cost = 0
    while task not in parent:
        node = queue.popleft()
        cost += len(edges[node])
        if cost > budget:
            return None, cost
        for child in edges[node]:
            if child not in parent and component[child] == own:
                parent[child] = node
                queue.append(child)
    cycle: list[str] = []
    step: str | None = task
    while step is not None:
        cycle.append(step)
        step = parent[step]
    return [*reversed(cycle), dep], cost
