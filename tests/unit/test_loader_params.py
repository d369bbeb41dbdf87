"""Workflow params: every task's environment, names kept for them, --param overrides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from stq.errors import EXIT_USAGE, UsageError, WorkflowInvalid
from stq.loader import (
    load_workflow_document,
    load_workflow_file,
    load_workflow_text,
    parse_param_flags,
)

CI = """\
name: ci
params: {BRANCH: main, DAY: "2026-12-06", LEVEL: 0x10, DEBUG: no, RATIO: 1.50}
defaults:
  env: {BRANCH: from-defaults, STAGE: prod}
tasks:
  build:
    command: make
  test:
    command: tox
    env: {STAGE: test}
    matrix: {PY: ["311"]}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    return [str(p) for p in caught.value.problems]


def test_params_reach_every_task_as_their_yaml_text() -> None:
    spec = load_workflow_text(CI)
    expected = {"BRANCH": "main", "DAY": "2026-12-06", "LEVEL": "0x10", "DEBUG": "no"}
    expected["RATIO"] = "1.50"
    assert dict(spec.params) == expected
    build, test = spec.tasks
    # defaults.env, then params, then the task's env, then its matrix values
    assert dict(build.env) == {**expected, "STAGE": "prod"}
    assert dict(test.env) == {**expected, "STAGE": "test", "PY": "311"}


def test_a_workflow_without_params_has_none() -> None:
    spec = load_workflow_text("name: w\ntasks:\n  a: {command: x}\n")
    assert dict(spec.params) == {}


def test_a_task_env_key_or_matrix_key_that_is_a_param_is_located_at_the_key() -> None:
    text = (
        "name: w\nparams: {BRANCH: main, PY: '3'}\ntasks:\n"
        "  a:\n    command: x\n    env:\n      OK: 1\n      BRANCH: dev\n"
        "  b: {command: x, matrix: {PY: ['311']}}\n"
    )
    assert _problems(text) == [
        "wf.yaml:8:7: tasks.a.env.BRANCH: 'BRANCH' is a param: a task's env may not set it "
        "(change it in params, or with --param)",
        "wf.yaml:9:28: tasks.b.matrix.PY: 'PY' is a param: a task's matrix may not set it "
        "(change it in params, or with --param)",
    ]


def test_a_defaults_env_key_may_share_a_params_name_and_loses() -> None:
    (task,) = load_workflow_text(
        "name: w\nparams: {A: p}\ndefaults: {env: {A: d}}\ntasks:\n  t: {command: x}\n"
    ).tasks
    assert task.env["A"] == "p"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("[A]", "2:9: params: must be a mapping, not ['A']"),
        ("{A: [1]}", "2:13: params.A: must be a string, a number or true or false, not [1]"),
        ("{A: ~}", "2:13: params.A: must be a string, a number or true or false, not null"),
        ("{1A: x}", "2:10: params: name '1A' must be a letter or _ followed by letters"),
    ],
)
def test_bad_params_are_located(params: str, expected: str) -> None:
    (problem,) = _problems(f"name: w\nparams: {params}\ntasks:\n  t: {{command: x}}\n")
    assert problem.startswith(f"wf.yaml:{expected}")


def test_overrides_replace_declared_values_in_every_task(tmp_path: Path) -> None:
    path = tmp_path / "ci.yaml"
    path.write_text(CI)
    spec = load_workflow_file(path, params={"BRANCH": "release", "LEVEL": "2"})
    assert (spec.params["BRANCH"], spec.params["LEVEL"], spec.params["DAY"]) == (
        "release",
        "2",
        "2026-12-06",
    )
    assert all(t.env["BRANCH"] == "release" and t.env["LEVEL"] == "2" for t in spec.tasks)
    assert load_workflow_text(CI, params={"DAY": ""}).params["DAY"] == ""


def test_overrides_through_a_document_leave_the_callers_document_alone() -> None:
    doc = {"name": "w", "params": {"A": 1}, "tasks": {"t": {"command": "x"}}}
    before = copy.deepcopy(doc)
    spec = load_workflow_document(doc, params={"A": "2"})
    assert (dict(spec.params), spec.tasks[0].env["A"]) == ({"A": "2"}, "2")
    assert doc == before


def test_an_undeclared_param_is_a_usage_error_naming_the_declared_ones() -> None:
    with pytest.raises(UsageError) as caught:
        load_workflow_text(CI, "ci.yaml", params={"BRNCH": "x", "DAY": "1"})
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.message == (
        "--param BRNCH is not a param of ci.yaml (its params: BRANCH, DAY, LEVEL, DEBUG, RATIO)"
    )
    with pytest.raises(UsageError, match=r"^--param A, --param B are not params of the workflow "
                       r"\(its params: none\)$"):  # fmt: skip
        load_workflow_document({"name": "w", "tasks": {"t": {"command": "x"}}}, params={
            "A": "1", "B": "2"})  # fmt: skip


def test_an_override_is_checked_like_a_value_in_the_file() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(CI, "ci.yaml", params={"DAY": "a\x00b"})
    assert [str(p) for p in caught.value.problems] == [
        "ci.yaml:2:29: params.DAY: contains a NUL character (\\0): the command could never be run"
    ]


def test_no_overrides_is_the_same_as_none() -> None:
    assert load_workflow_text(CI, params={}) == load_workflow_text(CI)


def test_param_flags_are_read_in_order() -> None:
    flags = ["BRANCH=main", "EMPTY=", "URL=http://x/?a=b", "_x1=y"]
    assert parse_param_flags(flags) == {
        "BRANCH": "main",
        "EMPTY": "",
        "URL": "http://x/?a=b",
        "_x1": "y",
    }
    assert parse_param_flags([]) == {}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["BRANCH"], "--param 'BRANCH': write it as NAME=VALUE"),
        (["=main"], "--param '=main': '' is not a param name (a letter or _ followed by"),
        (["1A=x"], "--param '1A=x': '1A' is not a param name"),
        (["A-B=x"], "--param 'A-B=x': 'A-B' is not a param name"),
        (["A=1", "B=2", "A=3"], "--param A is given twice: give each param once"),
    ],
)
def test_bad_param_flags_are_usage_errors(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_param_flags(flags)
    assert caught.value.message.startswith(message)
    assert caught.value.exit_code == EXIT_USAGE
