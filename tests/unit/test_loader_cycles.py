"""A dependency cycle is one problem per mistake, on the line of the mistake, naming the cycle."""

from __future__ import annotations

import itertools

import pytest

from stq.errors import Problem, WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_text
from stq.loader.graph import MAX_CYCLES_REPORTED

#: A release pipeline written as people write them, each task after what it depends on,
#: with fan-outs and fan-ins: one wrong entry at the top closes five cycles at once.
PIPELINE = """\
name: release
tasks:
  checkout:
    command: git pull{mistake}
  lint: {{command: make lint, depends_on: [checkout]}}
  unit: {{command: make unit, depends_on: [checkout]}}
  build: {{command: make build, depends_on: [checkout]}}
  docs: {{command: make docs, depends_on: [checkout]}}
  integration: {{command: make it, depends_on: [build]}}
  package: {{command: make dist, depends_on: [lint, unit, build, docs, integration]}}
"""


def _problems(text: str) -> list[Problem]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    return caught.value.problems


def _assert_real_cycle(message: str, graph: dict[str, list[str]]) -> list[str]:
    names = message.split("dependency cycle: ", 1)[1].split(" -> ")
    assert names[0] == names[-1] and len(names) >= 3, message
    for task, dep in itertools.pairwise(names):
        assert dep in graph[task], f"{task} -> {dep} is not an edge: {message}"
    return names


def test_one_wrong_entry_is_one_problem_on_its_own_line() -> None:
    text = PIPELINE.format(mistake="\n    depends_on: [package]")
    (problem,) = _problems(text)
    assert (problem.line, problem.col) == (5, 18)  # the `package` in checkout's depends_on
    assert problem.message.startswith("tasks.checkout.depends_on[0]: dependency cycle: ")
    graph = {
        t.name: list(t.depends_on) for t in load_workflow_text(PIPELINE.format(mistake="")).tasks
    }
    graph["checkout"] = ["package"]
    names = _assert_real_cycle(problem.message, graph)
    assert names == ["package", "lint", "checkout", "package"]  # a shortest cycle


def test_a_file_written_top_down_is_read_in_its_own_order() -> None:
    text = (
        "name: w\ntasks:\n"
        "  deploy: {command: x, depends_on: [test, build]}\n"
        "  test: {command: x, depends_on: [build]}\n"
        "  build: {command: x, depends_on: [fetch]}\n"
        "  fetch: {command: x, depends_on: [deploy]}\n"
    )
    (problem,) = _problems(text)
    assert str(problem) == (
        "wf.yaml:6:36: tasks.fetch.depends_on[0]: "
        "dependency cycle: deploy -> build -> fetch -> deploy"
    )


def test_two_mistakes_are_two_problems_each_where_it_is() -> None:
    text = (
        "name: w\ntasks:\n"
        "  a: {command: x, depends_on: [c]}\n"
        "  b: {command: x, depends_on: [a]}\n"
        "  c: {command: x, depends_on: [b]}\n"
        "  d: {command: x}\n"
        "  e: {command: x, depends_on: [d, f]}\n"
        "  f: {command: x, depends_on: [e]}\n"
    )
    assert [str(p) for p in _problems(text)] == [
        "wf.yaml:3:32: tasks.a.depends_on[0]: dependency cycle: c -> b -> a -> c",
        "wf.yaml:7:35: tasks.e.depends_on[1]: dependency cycle: f -> e -> f",
    ]


def test_a_task_that_only_depends_on_a_cycle_is_not_reported() -> None:
    text = (
        "name: w\ntasks:\n"
        "  a: {command: x, depends_on: [b]}\n"
        "  b: {command: x, depends_on: [a]}\n"
        "  after: {command: x, depends_on: [a, b]}\n"
    )
    problems = _problems(text)
    assert len(problems) == 1 and "after" not in problems[0].message


def test_many_cycles_are_named_up_to_the_limit_then_counted() -> None:
    # a ladder whose rungs go both ways: every second edge closes its own cycle
    n = 400
    tasks = {
        f"t{i}": {"command": "x", "depends_on": [f"t{j}" for j in (i - 1, i + 1) if 0 <= j < n]}
        for i in range(n)
    }
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document({"name": "w", "tasks": tasks})
    problems = caught.value.problems
    assert len(problems) == MAX_CYCLES_REPORTED + 1
    assert (
        problems[-1].message
        == f"tasks: {n - 1 - MAX_CYCLES_REPORTED} more dependency cycles not shown"
    )


def test_naming_cycles_in_a_hostile_document_stops_within_its_budget() -> None:
    # each of 300 entries closes a cycle through a 20,000-long chain: naming them all
    # would walk the chain 300 times, so the names stop and the rest are counted
    n, closers = 20_000, 300
    tasks = {
        f"t{i}": {"command": "x", "depends_on": [f"t{i + 1}"] if i + 1 < n else []}
        for i in range(n)
    }
    for i in range(n - closers, n):
        tasks[f"t{i}"]["depends_on"].append("t0")
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document({"name": "w", "tasks": tasks})
    *named, more = caught.value.problems
    assert 1 <= len(named) < MAX_CYCLES_REPORTED
    assert more.message == f"tasks: {closers - len(named)} more dependency cycles not shown"
    assert all(": dependency cycle: t0 -> t1 -> t2 -> " in p.message for p in named)
