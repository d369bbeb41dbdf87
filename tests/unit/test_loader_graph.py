"""The dependency graph: random DAGs pass, a back edge is caught as a real cycle."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_text

Graph = dict[str, list[str]]


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """Tasks t0..tN where each depends only on lower-numbered tasks, so there is no cycle."""
    size = draw(st.integers(min_value=1, max_value=30))
    # each task's first dependency is often its predecessor, so paths (and back edges) abound
    graph: Graph = {}
    for i in range(size):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=4)) if i else []
        if i and draw(st.booleans()) and i - 1 not in deps:
            deps.insert(0, i - 1)
        graph[f"t{i}"] = [f"t{d}" for d in deps]
    return graph


def _yaml(graph: Graph) -> str:
    lines = ["name: g", "tasks:"]
    for name, deps in graph.items():
        lines += [f"  {name}:", "    command: 'true'", f"    depends_on: [{', '.join(deps)}]"]
    return "\n".join(lines) + "\n"


def _reachable(graph: Graph, start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for dep in graph[node]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_validate(graph: Graph) -> None:
    spec = load_workflow_text(_yaml(graph))
    assert {t.name: list(t.depends_on) for t in spec.tasks} == graph


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_is_reported_as_a_real_cycle(graph: Graph, data: st.DataObject) -> None:
    pairs = [(low, high) for high in graph for low in graph if _reachable(graph, high, low)]
    pairs = [(low, high) for low, high in pairs if low != high and high not in graph[low]]
    assume(pairs)
    low, high = data.draw(st.sampled_from(pairs))
    graph[low].append(high)  # high reaches low already: now low -> high -> ... -> low
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(_yaml(graph))
    cycles = [re.search(r"dependency cycle: (.*)$", p.message) for p in caught.value.problems]
    assert cycles and all(cycles), caught.value.problems
    for match in cycles:
        names = match.group(1).split(" -> ")
        assert names[0] == names[-1] and len(names) >= 3
        for task, dep in itertools.pairwise(names):
            assert dep in graph[task], f"{task} -> {dep} is not an edge"


def test_cycle_is_reported_at_the_closing_edge() -> None:
    text = (
        "name: g\ntasks:\n  a: {command: x, depends_on: [b]}\n  b: {command: x, depends_on: [a]}\n"
    )
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "g.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "g.yaml:4:32: tasks.b.depends_on[0]: dependency cycle: a -> b -> a"
    ]


def test_every_separate_cycle_is_named() -> None:
    tasks = {
        n: {"command": "x", "depends_on": [d]}
        for n, d in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c")]
    }
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document({"name": "g", "tasks": tasks})
    messages = sorted(p.message for p in caught.value.problems)
    assert messages == [
        "tasks.b.depends_on[0]: dependency cycle: a -> b -> a",
        "tasks.e.depends_on[0]: dependency cycle: c -> d -> e -> c",
    ]


def test_hundred_thousand_long_chain_has_no_recursion_limit() -> None:
    n = 100_000
    tasks = {
        f"t{i}": {"command": "x", "depends_on": [f"t{i + 1}"] if i + 1 < n else []}
        for i in range(n)
    }
    assert len(load_workflow_document({"name": "chain", "tasks": tasks}).tasks) == n
    tasks[f"t{n - 1}"]["depends_on"] = ["t0"]
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document({"name": "chain", "tasks": tasks})
    (problem,) = caught.value.problems
    assert problem.path == f"/tasks/t{n - 1}/depends_on/0"
    assert problem.message.count(" -> ") == n
