"""Matrix tasks: expansion, names, environment, dependencies, limits and every located mistake."""

from __future__ import annotations

import resource
import time

import pytest

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_text
from stq.loader import schema as loader_schema
from stq.loader.graph import MAX_EDGES, MAX_TASKS
from stq.loader.matrix import MAX_COMBINATIONS
from stq.model import TaskSpec, WorkflowSpec

CI = """\
name: ci
defaults:
  env: {PY: default, STAGE: prod}
tasks:
  test:
    description: Unit tests on every Python
    command: tox -e "py$PY"
    matrix: {PY: ["311", "312", "313"], OS: [linux]}
    env: {OS: mine, LEVEL: 3}
    depends_on: [lint]
    max_attempts: 2
  lint: {command: make lint}
  package:
    command: make dist
    depends_on: [test]
"""


def _load(text: str) -> WorkflowSpec:
    return load_workflow_text(text, "wf.yaml")


def _task(spec: WorkflowSpec, name: str) -> TaskSpec:
    (task,) = [t for t in spec.tasks if t.name == name]
    return task


def _problems(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    return [str(p) for p in caught.value.problems]


def _one_task(matrix: str, extra: str = "") -> str:
    return f"name: w\ntasks:\n  t:\n    command: x\n    matrix: {matrix}\n{extra}"


def test_a_matrix_task_becomes_one_task_per_combination_in_its_place() -> None:
    spec = _load(CI)
    assert [t.name for t in spec.tasks] == [
        "test-311-linux",
        "test-312-linux",
        "test-313-linux",
        "lint",
        "package",
    ]
    first = spec.tasks[0]
    assert (first.matrix_of, dict(first.matrix or {})) == ("test", {"PY": "311", "OS": "linux"})
    assert (first.description, first.max_attempts, first.command) == (
        "Unit tests on every Python",
        2,
        'tox -e "py$PY"',
    )
    assert (_task(spec, "lint").matrix, _task(spec, "lint").matrix_of) == (None, None)


def test_matrix_values_come_last_in_the_environment() -> None:
    task = _task(_load(CI), "test-312-linux")
    # defaults.env, then the task's env, then the matrix values
    assert dict(task.env) == {"PY": "312", "STAGE": "prod", "OS": "linux", "LEVEL": "3"}


def test_keys_then_values_in_the_order_written() -> None:
    spec = _load(_one_task("{B: [2, 1], A: [z, y]}"))
    assert [t.name for t in spec.tasks] == ["t-2-z", "t-2-y", "t-1-z", "t-1-y"]
    assert [list(t.matrix or {}) for t in spec.tasks] == [["B", "A"]] * 4


def test_values_are_rendered_alike_in_name_and_environment() -> None:
    spec = _load(_one_task("{N: [-7, 0x10, 999999999999999999], F: [true, false, '3.10', a_b.c]}"))
    names = [t.name for t in spec.tasks]
    assert names[:4] == ["t--7-true", "t--7-false", "t--7-3.10", "t--7-a_b.c"]
    assert "t-16-true" in names and "t-999999999999999999-a_b.c" in names
    task = _task(spec, "t-16-false")
    assert (task.env["N"], task.env["F"]) == ("16", "false")
    assert dict(task.matrix or {}) == {"N": "16", "F": "false"}


def test_a_matrix_name_means_every_expansion_and_its_deps_apply_to_each() -> None:
    spec = _load(CI)
    assert _task(spec, "package").depends_on == (
        "test-311-linux",
        "test-312-linux",
        "test-313-linux",
    )
    assert all(_task(spec, f"test-{py}-linux").depends_on == ("lint",) for py in (311, 312, 313))


def test_one_expansion_may_be_named_and_is_listed_once() -> None:
    text = CI.replace("depends_on: [test]", "depends_on: [test-312-linux]")
    assert _task(_load(text), "package").depends_on == ("test-312-linux",)
    both = CI.replace("depends_on: [test]", "depends_on: [test-313-linux, lint, test]")
    assert _task(_load(both), "package").depends_on == (
        "test-313-linux",
        "lint",
        "test-311-linux",
        "test-312-linux",
    )


def test_matrix_to_matrix_is_every_pair() -> None:
    text = (
        "name: w\ntasks:\n"
        "  a: {command: x, matrix: {X: [1, 2]}}\n"
        "  b: {command: x, matrix: {Y: [p, q, r]}, depends_on: [a]}\n"
    )
    spec = _load(text)
    assert [t.depends_on for t in spec.tasks[2:]] == [("a-1", "a-2")] * 3


def test_same_result_from_a_json_document() -> None:
    doc = {
        "name": "w",
        "tasks": {
            "t": {"command": ["x"], "matrix": {"N": [1, 2], "B": [True]}},
            "after": {"command": "y", "depends_on": ["t"]},
        },
    }
    spec = load_workflow_document(doc)
    text = "name: w\ntasks:\n  t: {command: [x], matrix: {N: [1, 2], B: [true]}}\n"
    assert spec.tasks[:2] == _load(text).tasks
    assert spec.tasks[2].depends_on == ("t-1-true", "t-2-true")


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ("{PY: [3.9]}", "5:19: tasks.t.matrix.PY[0]: 3.9 must be a string of 1-40 characters"),
        ("{PY: [3.0]}", "5:19: tasks.t.matrix.PY[0]: 3.0 is a number with a decimal point"),
        ("{PY: [.inf]}", "5:19: tasks.t.matrix.PY[0]: .inf must be a string"),
        ("{V: [a-b]}", "5:18: tasks.t.matrix.V[0]: 'a-b' must be a string of 1-40"),
        ("{V: [" + "a" * 41 + "]}", "5:18: tasks.t.matrix.V[0]: '" + "a" * 41 + "' must be"),
        ("{V: ['']}", "5:18: tasks.t.matrix.V[0]: '' must be a string of 1-40"),
        ("{V: [1000000000000000000]}", "5:18: tasks.t.matrix.V[0]: 1000000000000000000 must"),
        ("{V: [~]}", "5:18: tasks.t.matrix.V[0]: ~ must be a string"),
        ("{V: [[1]]}", "5:18: tasks.t.matrix.V[0]: [1] must be a string"),
        ("{V: []}", "5:17: tasks.t.matrix.V: must not be empty"),
        ("{V: x}", "5:17: tasks.t.matrix.V: must be a list, not 'x'"),
        ("{}", "5:13: tasks.t.matrix: must not be empty"),
        ("[x]", "5:13: tasks.t.matrix: must be a mapping, not ['x']"),
        ("{1V: [a]}", "5:14: tasks.t.matrix: name '1V' must be a letter or _"),
        ("{V: [a, b, a]}", "5:24: tasks.t.matrix.V[2]: 'a' is already listed at [0]"),
        ("{V: ['1', 1]}", "5:23: tasks.t.matrix.V[1]: 1 (as text '1') is already listed at [0]"),
        ("{V: ['true', true]}", "5:26: tasks.t.matrix.V[1]: true (as text 'true') is already"),
    ],
)
def test_a_bad_matrix_is_located_at_what_is_wrong(matrix: str, expected: str) -> None:
    (problem,) = _problems(_one_task(matrix))
    assert problem.startswith(f"wf.yaml:{expected}")


def test_the_messages_say_what_to_write() -> None:
    (float_text,) = _problems(_one_task("{PY: [3.10]}"))
    assert float_text.endswith(
        "3.10 must be a string of 1-40 characters of A-Z a-z 0-9 _ . (quote numbers such as "
        '"3.10"), an integer of at most 18 digits, or true or false'
    )
    (whole,) = _problems(_one_task("{PY: [3.0]}"))
    assert whole.endswith(
        "3.0 is a number with a decimal point, which a matrix does not take; "
        'write "3.0" if it is text, or an integer'
    )


def test_too_many_combinations_at_the_matrix_key() -> None:
    values = ", ".join(map(str, range(17)))
    text = _one_task(f"{{A: [{values}], B: [{values[:-4]}]}}")
    assert _problems(text) == [
        "wf.yaml:5:5: tasks.t.matrix: has 272 combinations, more than the limit of 256"
    ]
    exactly = _one_task(f"{{A: [{', '.join(map(str, range(16)))}], B: [{values[:-4]}]}}")
    assert len(_load(exactly).tasks) == MAX_COMBINATIONS


def test_a_name_too_long_once_expanded() -> None:
    name = "n" * 60
    text = f"name: w\ntasks:\n  {name}:\n    command: x\n    matrix: {{A: [{'v' * 40}, w]}}\n"
    assert _problems(text) == [
        f"wf.yaml:5:5: tasks.{name}.matrix: expands to a task name longer than 100 characters: "
        f"'{name}-{'v' * 40}'"
    ]
    assert _load(text.replace("v" * 40, "v" * 39)).tasks[0].name == f"{name}-{'v' * 39}"


def test_a_name_taken_by_another_task_is_reported_at_the_matrix() -> None:
    for order in ("  t-1: {command: y}\n  t: {command: x, matrix: {N: [1]}}\n",
                  "  t: {command: x, matrix: {N: [1]}}\n  t-1: {command: y}\n"):  # fmt: skip
        (problem,) = _problems("name: w\ntasks:\n" + order)
        assert problem.endswith("tasks.t.matrix: expands to 't-1', the name of another task")


def test_two_matrices_that_make_the_same_name() -> None:
    text = (
        "name: w\ntasks:\n"
        "  a: {command: x, matrix: {X: [b], Y: [1]}}\n"
        "  a-b: {command: x, matrix: {Y: [1, 2]}}\n"
        "  after: {command: x, depends_on: [a-b-2, a-b]}\n"
    )
    # the later matrix is the one reported; names it would have made are not "unknown"
    assert _problems(text) == [
        "wf.yaml:4:21: tasks.a-b.matrix: expands to 'a-b-1', as the matrix of task 'a' does"
    ]


def test_an_unknown_expansion_and_a_matrix_that_depends_on_itself() -> None:
    text = (
        "name: w\ntasks:\n"
        "  t: {command: x, matrix: {N: [1, 2]}, depends_on: [t-1]}\n"
        "  u: {command: x, matrix: {N: [1, 2]}, depends_on: [u]}\n"
        "  v: {command: x, depends_on: [t-3, t]}\n"
    )
    assert _problems(text) == [
        "wf.yaml:3:53: tasks.t.depends_on[0]: 't-1' is an expansion of this task: "
        "it would depend on itself",
        "wf.yaml:4:53: tasks.u.depends_on[0]: task 'u' depends on itself",
        "wf.yaml:5:32: tasks.v.depends_on[0]: unknown task 't-3'",
    ]


def test_a_cycle_through_expansions_is_one_problem_at_the_entry_written() -> None:
    text = (
        "name: w\ntasks:\n"
        "  a: {command: x, matrix: {N: [1, 2, 3]}, depends_on: [c]}\n"
        "  b: {command: x, matrix: {M: [p, q]}, depends_on: [a]}\n"
        "  c: {command: x, depends_on: [b-q]}\n"
    )
    # a-1, a-2 and a-3 each close a cycle through `c`: one entry, one problem
    assert _problems(text) == [
        "wf.yaml:3:56: tasks.a.depends_on[0]: dependency cycle: c -> b-q -> a-1 -> c"
    ]


def test_expansions_count_towards_the_task_limit() -> None:
    values = ", ".join(map(str, range(250)))
    rows = "".join(f"  m{i}: {{command: x, matrix: *m}}\n" for i in range(1, 401))
    text = f"name: w\ntasks:\n  m0: {{command: x, matrix: &m {{N: [{values}]}}}}\n{rows}"
    assert _problems(text) == [
        f"wf.yaml:3:3: tasks: has 100250 tasks once matrices are expanded, "
        f"more than the limit of {MAX_TASKS}"
    ]


def test_expanded_dependencies_are_limited_before_anything_is_expanded() -> None:
    values = ", ".join(map(str, range(256)))
    rows = "".join(
        f"  m{i}: {{command: x, matrix: *m, depends_on: [m{i - 1}]}}\n" for i in range(1, 17)
    )
    text = f"name: w\ntasks:\n  m0: {{command: x, matrix: &m {{N: [{values}]}}}}\n{rows}"
    start = time.perf_counter()
    assert _problems(text) == [
        f"wf.yaml:3:3: tasks: has {16 * 256 * 256} dependencies once matrices are expanded, "
        f"more than the limit of {MAX_EDGES}"
    ]
    assert time.perf_counter() - start < 1
    # one fewer matrix task: 983,040 edges, within the limit
    fewer = text.replace("  m16: {command: x, matrix: *m, depends_on: [m15]}\n", "")
    assert len(_load(fewer).tasks) == 16 * 256


def test_an_expansion_named_beside_its_matrix_counts_once() -> None:
    deps = ["m"] + [f"m-{i}" for i in range(250)]
    tasks = {"m": {"command": "x", "matrix": {"N": list(range(250))}}}
    tasks |= {f"d{i}": {"command": "x", "depends_on": deps} for i in range(4000)}
    # 4,000 x 250 = 1,000,000 edges exactly: within the limit only if the names count once
    spec = load_workflow_document({"name": "w", "tasks": tasks})
    assert sum(len(t.depends_on) for t in spec.tasks) == MAX_EDGES
    assert spec.tasks[-1].depends_on == tuple(f"m-{i}" for i in range(250))


def test_a_hundred_thousand_tasks_from_matrices_validate_fast() -> None:
    a_values = ", ".join(f"a{j}" for j in range(25))
    b_values = ", ".join(map(str, range(10)))
    rows = [f"  m0: {{command: echo, matrix: &m {{A: [{a_values}], B: [{b_values}]}}}}\n"]
    for i in range(1, 400):
        dep = f"m{i - 1}" if i % 40 == 0 else f"m{i - 1}-a{i % 25}-{i % 10}"
        rows.append(f"  m{i}: {{command: echo, matrix: *m, depends_on: [{dep}]}}\n")
    text = "name: w\ntasks:\n" + "".join(rows)
    start = time.perf_counter()
    spec = _load(text)
    assert time.perf_counter() - start < 10
    assert len(spec.tasks) == MAX_TASKS
    assert sum(len(t.depends_on) for t in spec.tasks) == 9 * 250 * 250 + 390 * 250
    assert spec.tasks[-1].depends_on == ("m398-a24-9",)


def test_a_valid_matrix_never_reaches_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("jsonschema was asked about a valid document")

    monkeypatch.setattr(loader_schema, "_validators", refuse)
    matrix = "{A: [a.b, 999999999999999999, -999999999999999999, true], B: [x_1]}"
    text = "name: w\nparams: {P: 1.5}\ndefaults: {run_if: always}\ntasks:\n"
    text += f"  t: {{command: x, description: d, run_if: on_failure, matrix: {matrix}}}\n"
    assert len(_load(text).tasks) == 4


def test_a_shared_matrix_in_every_task_is_refused_without_expanding_it() -> None:
    # 100,000 tasks sharing one 256-combination matrix would be 25.6 million tasks
    matrix = {"A": list(range(16)), "B": list(range(16))}
    tasks = {f"m{i}": {"command": "x", "matrix": matrix} for i in range(MAX_TASKS)}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document({"name": "w", "tasks": tasks})
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
    assert [p.message for p in caught.value.problems] == [
        f"tasks: has {MAX_TASKS * 256} tasks once matrices are expanded, "
        f"more than the limit of {MAX_TASKS}"
    ]


def test_a_mistake_in_a_shared_matrix_is_reported_once() -> None:
    rows = "".join(f"  t{i}: {{command: x, matrix: *m}}\n" for i in range(1, 50))
    text = f"name: w\ntasks:\n  t0: {{command: x, matrix: &m {{A: [1, 1.0]}}}}\n{rows}"
    assert _problems(text) == [
        "wf.yaml:3:39: tasks.t0.matrix.A[1]: 1.0 is a number with a decimal point, which a "
        'matrix does not take; write "1.0" if it is text, or an integer'
    ]
