"""The compiled fast check: taken by valid input, never the judge of anything else.

The generated comparisons with jsonschema are in ``tests/fuzz/test_fast_schema.py``.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from typing import Any

import pytest

from stq.api import bodies
from stq.loader import load_workflow_document, workflow_schema
from stq.loader import schema as loader_schema
from stq.loader.fast_schema import fast_check
from stq.loader.locate import Locator


@pytest.mark.parametrize(
    ("schema", "doc"),
    [
        (bodies.CLAIM, {"runner": "r", "labels": ["gpu"], "wait": 25.0}),
        (bodies.RESULT, {"status": "completed", "exit_code": 0, "output": "", "message": None,
                         "next": {"runner": "r", "labels": []}}),
        (bodies.HEARTBEAT, {}),
    ],
)  # fmt: skip
def test_runner_bodies_take_the_fast_path(schema: dict, doc: dict) -> None:
    assert fast_check(schema)(doc)


@pytest.mark.parametrize(
    "doc",
    [{"runner": "r", "unknown": 1}, {"runner": ""}, {"runner": "r", "wait": -1}, {"wait": 1},
     {"runner": "r", "labels": [""]}, {"runner": True}, [], {"runner": "r", "wait": 1e400 * 0}],
)  # fmt: skip
def test_invalid_claims_are_left_to_jsonschema(doc: object) -> None:
    assert not fast_check(bodies.CLAIM)(doc)


@pytest.mark.parametrize(
    "value", [{"runner": "r", 1: "x"}, {"runner": "r", "labels": [datetime.date(2020, 1, 1)]}]
)
def test_values_it_cannot_take_are_left_to_jsonschema(value: Any) -> None:
    # a key that is not a string, a type JSON has not: jsonschema-rs raises, meaning "not sure"
    assert fast_check(bodies.CLAIM)(value) is False


def test_a_name_the_fast_check_cannot_read_gets_the_same_problems() -> None:
    # jsonschema-rs cannot match a pattern against an unpaired surrogate (UTF-8 has none)
    doc = {"name": "w", "tasks": {"\ud800": {"command": "x", "labels": ["\udc00"]}}}
    assert fast_check(workflow_schema())(doc) is False
    hint = "must be 1-100 characters of A-Z a-z 0-9 _ . - not starting with '.' or '-'"
    assert [str(p) for p in loader_schema.schema_problems(doc, Locator(doc))] == [
        f"tasks: task name '\\ud800' {hint}",
        f"tasks['\\ud800'].labels[0]: '\\udc00' {hint}",
    ]


def test_compiled_once_per_schema() -> None:
    assert fast_check(bodies.RESULT) is fast_check(bodies.RESULT)
    assert fast_check(bodies.RESULT) is not fast_check(bodies.CLAIM)


def test_building_the_app_compiles_nothing() -> None:
    probe = "import sys, stq.api; stq.api.app; print('jsonschema_rs' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def _flat(n: int) -> dict[str, Any]:
    return {"name": "flat", "tasks": {f"t{i}": {"command": "true"} for i in range(n)}}


def test_a_valid_workflow_never_reaches_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("jsonschema was asked about a valid document")

    monkeypatch.setattr(loader_schema, "_validators", refuse)
    assert len(load_workflow_document(_flat(1000)).tasks) == 1000


class _Counting:
    """A jsonschema validator that counts the instances it is asked about."""

    def __init__(self, inner: Any):
        self.inner, self.asked = inner, 0

    def iter_errors(self, instance: Any) -> Any:
        self.asked += 1
        return self.inner.iter_errors(instance)


def test_only_the_refused_task_of_a_big_workflow_goes_to_jsonschema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outer, single, name = loader_schema._validators()
    counting = _Counting(single)
    monkeypatch.setattr(loader_schema, "_validators", lambda: (outer, counting, name))
    doc = _flat(20_000)
    doc["tasks"]["t7"]["max_attempts"] = 0
    doc["tasks"]["bad name"] = {"command": "true"}
    problems = [str(p) for p in loader_schema.schema_problems(doc, Locator(doc))]
    assert problems == [
        "tasks.t7.max_attempts: 0 is less than the minimum of 1",
        "tasks: task name 'bad name' must be 1-100 characters of A-Z a-z 0-9 _ . - "
        "not starting with '.' or '-'",
    ]
    assert counting.asked == 1
