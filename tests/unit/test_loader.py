"""The loader: normalization, defaults, merge keys, env text, limits, the JSON path."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from stq.errors import WorkflowInvalid
from stq.loader import (
    MAX_FILE_BYTES,
    load_workflow_document,
    load_workflow_file,
    load_workflow_text,
    workflow_schema,
)

FULL = """\
name: nightly-etl
description: Load yesterday's files
defaults:
  duration: 10m
  max_attempts: 2
  env: {STAGE: prod, DEBUG: false, LEVEL: 3}
tasks:
  extract:
    command: ./extract.sh --day "$DAY"
    duration: 90
    max_attempts: 3
    env: {DAY: "2026-11-27", LEVEL: 0x10, RATIO: 1.50, FLAG: yes}
  transform:
    command: [python3, transform.py, out/]
    depends_on: [extract]
    cwd: work
    labels: [gpu]
    priority: 10
    retry_delay: 30s
  report:
    command: ./report.sh
    depends_on: [transform, extract]
    labels: []
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    return [str(p) for p in caught.value.problems]


def test_normalizes_spec_example() -> None:
    spec = load_workflow_text(FULL, "wf.yaml")
    assert (spec.name, spec.description) == ("nightly-etl", "Load yesterday's files")
    assert [t.name for t in spec.tasks] == ["extract", "transform", "report"]
    extract, transform, report = spec.tasks
    assert extract.command == './extract.sh --day "$DAY"'
    assert transform.command == ("python3", "transform.py", "out/")
    assert (extract.duration, transform.duration) == (90.0, 600.0)
    assert (extract.max_attempts, transform.max_attempts) == (3, 2)
    assert report.depends_on == ("transform", "extract")
    assert (transform.cwd, transform.labels, transform.priority) == ("work", ("gpu",), 10)
    assert (transform.retry_delay, report.retry_delay, report.labels) == (30.0, 0.0, ())


def test_env_is_merged_over_defaults_as_yaml_text() -> None:
    extract, transform, _ = load_workflow_text(FULL, "wf.yaml").tasks
    assert dict(extract.env) == {
        "STAGE": "prod",
        "DEBUG": "false",
        "LEVEL": "0x10",
        "DAY": "2026-11-27",
        "RATIO": "1.50",
        "FLAG": "yes",
    }
    assert dict(transform.env) == {"STAGE": "prod", "DEBUG": "false", "LEVEL": "3"}
    with pytest.raises(TypeError):
        extract.env["X"] = "1"  # type: ignore[index]


def test_bare_defaults() -> None:
    (task,) = load_workflow_text("name: w\ntasks:\n  a: {command: 'true'}\n").tasks
    assert (task.duration, task.max_attempts, task.priority, task.retry_delay) == (None, 1, 0, 0)
    assert (task.cwd, task.labels, task.depends_on, dict(task.env)) == (None, (), (), {})


def test_merge_keys_and_aliases_with_overrides() -> None:
    text = """\
name: w
tasks:
  a: &base
    command: echo a
    max_attempts: 3
    priority: 5
  b:
    <<: *base
    priority: 7
  c:
    <<: [*base]
    command: echo c
"""
    _, b, c = load_workflow_text(text).tasks
    assert (b.command, b.max_attempts, b.priority) == ("echo a", 3, 7)
    assert (c.command, c.max_attempts, c.priority) == ("echo c", 3, 5)


def test_task_order_is_file_order_not_sorted() -> None:
    names = [f"t{n}" for n in (5, 3, 9, 1, 7)]
    text = "name: w\ntasks:\n" + "".join(f"  {n}: {{command: x}}\n" for n in names)
    assert [t.name for t in load_workflow_text(text).tasks] == names


def test_reports_every_problem_sorted_by_position() -> None:
    problems = _problems(
        "name: w\ntasks:\n  a:\n    command: x\n    max_attempts: 0\n"
        "  b:\n    comand: y\n    depends_on: [zz]\n"
    )
    assert problems == [
        "wf.yaml:5:19: tasks.a.max_attempts: 0 is less than the minimum of 1",
        "wf.yaml:6:3: tasks.b: missing required field 'command'",
        "wf.yaml:7:5: tasks.b.comand: unknown field 'comand' (did you mean 'command'?)",
        "wf.yaml:8:18: tasks.b.depends_on[0]: unknown task 'zz'",
    ]


def test_merged_keys_may_be_overridden_but_own_keys_not_repeated() -> None:
    ok = "name: w\nx: &x {command: a}\n"
    assert any("unknown field 'x'" in p for p in _problems(ok + "tasks:\n  a: *x\n"))
    dup = "name: w\ntasks:\n  a:\n    command: a\n    command: b\n"
    assert _problems(dup) == ["wf.yaml:5:5: duplicate key 'command' (first at line 4)"]


def test_document_problems_carry_json_pointers() -> None:
    doc = {"name": "w", "tasks": {"build": {"command": "x", "max_attempts": 0, "bogus": 1}}}
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document(doc)
    details = {p.path: p.message for p in caught.value.problems}
    assert details["/tasks/build/max_attempts"].endswith("0 is less than the minimum of 1")
    assert "unknown field 'bogus'" in details["/tasks/build/bogus"]
    assert caught.value.details[0]["path"].startswith("/tasks/build/")


def test_document_env_values_become_text() -> None:
    doc = {"name": "w", "tasks": {"a": {"command": ["x"], "env": {"A": True, "B": 2, "C": 1.5}}}}
    (task,) = load_workflow_document(json.loads(json.dumps(doc))).tasks
    assert dict(task.env) == {"A": "true", "B": "2", "C": "1.5"}
    assert task.command == ("x",)


def test_deeply_nested_document_is_refused_cleanly() -> None:
    deep: object = "x"
    for _ in range(5000):
        deep = [deep]
    doc = {"name": "w", "tasks": {"a": {"command": "x", "env": {"A": deep}}}}
    with pytest.raises(WorkflowInvalid):
        load_workflow_document(doc)


@pytest.mark.parametrize("doc", [None, [], "text", 3])
def test_document_that_is_not_a_mapping(doc: object) -> None:
    with pytest.raises(WorkflowInvalid, match="top level must be a mapping"):
        load_workflow_document(doc)


def test_schema_is_cached_and_documented() -> None:
    schema = workflow_schema()
    assert schema is workflow_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    task = schema["$defs"]["task"]
    assert all("description" in prop for prop in task["properties"].values())
    assert all("description" in prop for prop in schema["properties"].values())
    assert task["additionalProperties"] is False


def test_billion_laughs_refused_fast_and_small() -> None:
    text = "name: w\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 12)
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    problems = _problems(text + "tasks:\n  a: {command: x}\n")
    assert time.perf_counter() - start < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    assert len(problems) == 1 and "aliases expand this document" in problems[0]


def test_ten_thousand_deep_nesting_is_located() -> None:
    block = "name: w\nx:\n  " + "- " * 10_000 + "v\n"
    flow = "name: w\nx: " + "[" * 10_000 + "]" * 10_000 + "\n"
    for text in (block, flow):
        (problem,) = _problems(text)
        assert problem.startswith("wf.yaml:") and "nest" in problem


def test_oversized_file_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"name: w\n" + b"#" * MAX_FILE_BYTES)
    with pytest.raises(WorkflowInvalid, match=f"The file is over the {MAX_FILE_BYTES} byte limit"):
        load_workflow_file(big)


def test_too_many_tasks_named() -> None:
    text = "name: w\ntasks:\n" + "".join(f"  t{i}: {{command: x}}\n" for i in range(100_001))
    (problem,) = _problems(text)
    assert problem == "wf.yaml:3:3: tasks: has 100001 entries, more than the limit of 100000"


def test_bom_is_accepted_and_bad_bytes_located() -> None:
    assert load_workflow_text(b"\xef\xbb\xbfname: w\ntasks:\n  a: {command: x}\n").name == "w"
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(b"name: w\ntasks:\n  a: {command: \xff}\n", "f.yaml")
    assert str(caught.value.problems[0]).startswith("f.yaml:3:16: not UTF-8 text")


def test_json_text_is_yaml_too() -> None:
    doc = {"name": "w", "tasks": {"a": {"command": "x", "duration": "1h30m"}}}
    assert load_workflow_text(json.dumps(doc)).tasks[0].duration == 5400.0
