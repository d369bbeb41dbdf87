"""``run_if`` and ``description``: defaults, per-task values, and located mistakes."""

from __future__ import annotations

import pytest

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_text, workflow_schema
from stq.model import RunIf

FILE = """\
name: ci
tasks:
  package: {command: make dist}
  notify-failure:
    command: ./notify.sh
    depends_on: [package]
    run_if: on_failure
  cleanup:
    description: Remove what the build left
    command: rm -rf build
    depends_on: [package, notify-failure]
    run_if: always
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    return [str(p) for p in caught.value.problems]


def test_run_if_is_on_success_unless_said() -> None:
    package, notify, cleanup = load_workflow_text(FILE).tasks
    assert (package.run_if, notify.run_if, cleanup.run_if) == (
        RunIf.ON_SUCCESS,
        RunIf.ON_FAILURE,
        RunIf.ALWAYS,
    )
    assert isinstance(package.run_if, RunIf)


def test_defaults_run_if_applies_to_tasks_that_do_not_say() -> None:
    text = FILE.replace("tasks:\n", "defaults: {run_if: always}\ntasks:\n", 1)
    package, notify, cleanup = load_workflow_text(text).tasks
    assert (package.run_if, notify.run_if, cleanup.run_if) == (
        RunIf.ALWAYS,
        RunIf.ON_FAILURE,
        RunIf.ALWAYS,
    )
    text = FILE.replace("run_if: on_failure", "run_if: on_success")
    text = text.replace("tasks:\n", "defaults: {run_if: on_failure}\ntasks:\n", 1)
    assert [t.run_if for t in load_workflow_text(text).tasks] == [
        RunIf.ON_FAILURE,
        RunIf.ON_SUCCESS,
        RunIf.ALWAYS,
    ]


def test_description_is_per_task_text() -> None:
    package, _, cleanup = load_workflow_text(FILE).tasks
    assert (package.description, cleanup.description) == (None, "Remove what the build left")
    longest = "x" * 1000
    doc = {"name": "w", "tasks": {"a": {"command": "x", "description": longest}}}
    assert load_workflow_document(doc).tasks[0].description == longest


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("run_if: on_error", "5:13: tasks.a.run_if: 'on_error' must be on_success, on_failure or"),
        ("run_if: true", "5:13: tasks.a.run_if: true must be on_success, on_failure or always"),
        ("run_if: [always]", "5:13: tasks.a.run_if: ['always'] must be on_success, on_failure"),
        ("description: " + "d" * 1001, "5:18: tasks.a.description: is longer than 1000"),
        ("description: [a]", "5:18: tasks.a.description: must be a string, not ['a']"),
        ("description: 12", "5:18: tasks.a.description: must be a string, not 12"),
    ],
)
def test_bad_values_are_located(line: str, expected: str) -> None:
    (problem,) = _problems(f"name: w\ntasks:\n  a:\n    command: x\n    {line}\n")
    assert problem.startswith(f"wf.yaml:{expected}")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("run_if: Always", "3:12: defaults.run_if: 'Always' must be on_success, on_failure or"),
        (
            "description: every task",
            "3:4: defaults.description: unknown field 'description' (known: duration, "
            "max_attempts, env, cwd, labels, priority, retry_delay, run_if; "
            "'description' is set by each task)",
        ),
        ("matrix: {A: [1]}", "3:4: defaults.matrix: unknown field 'matrix' (known: duration,"),
        ("command: x", "3:4: defaults.command: unknown field 'command' (known: duration,"),
    ],
)
def test_defaults_take_run_if_but_not_what_is_per_task(line: str, expected: str) -> None:
    (problem,) = _problems(f"name: w\ndefaults:\n  {{{line}}}\ntasks:\n  a: {{command: x}}\n")
    assert problem.startswith(f"wf.yaml:{expected}")


def test_new_fields_are_documented_for_editors() -> None:
    schema = workflow_schema()
    task = schema["$defs"]["task"]["properties"]
    defaults = schema["properties"]["defaults"]["properties"]
    for field in (task["description"], task["run_if"], task["matrix"], defaults["run_if"]):
        assert field["description"] and field["examples"]
    params = schema["properties"]["params"]
    assert params["description"] and params["examples"]
    assert schema["$defs"]["run_if"]["enum"] == [r.value for r in RunIf]
    assert "description" not in defaults and "matrix" not in defaults
