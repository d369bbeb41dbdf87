"""jsonschema-rs against jsonschema on generated documents: the fast one is never looser.

Documents are valid by construction, or nearly valid: one field (at most) takes
a value just outside what the schema allows (a trailing newline, one past a
limit, ``true`` for an integer, a duplicate, an unknown key). For the workflow
schema, the loader's schema check as a whole (fast check, then jsonschema for
what it refuses) must find problems exactly when jsonschema does; for the
request bodies, the fast check may answer "valid" only when jsonschema does.
``STQ_FULL_FAULTS=1`` tries ten times more cases.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from stq.api import bodies
from stq.loader import workflow_schema
from stq.loader.fast_schema import fast_check
from stq.loader.locate import Locator
from stq.loader.schema import schema_problems

RUNS = 10 if os.environ.get("STQ_FULL_FAULTS") == "1" else 1
SCHEMA = workflow_schema()
JUDGE = Draft202012Validator(SCHEMA)

names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True) | st.just("n" * 100)
bad_names = st.sampled_from(
    ["", ".a", "-a", "a\n", "\na", "a b", "é", "n" * 101, "a\u2028", "\uff41", "a/b"]
)
#: Values of every JSON type, for a field that wants another one.
wrong = st.sampled_from([None, True, False, 0, 1.5, -1, "", "x", [], {}, ["x"], {"x": 1}])

seconds = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
durations = (
    seconds
    | st.integers(1, 10**6)
    | st.sampled_from(["90", "90s", "10m", "1h30m", "1m30s", "0h1m", "007s", "1h"])
)
bad_durations = st.sampled_from(
    [0, 0.0, -1, -0.5, "0", "0s", "0h0m", "1s1m", "1m\n", "1 h", "h", "", "1.5s", "-1"]
)
attempts = st.integers(1, 100) | st.sampled_from([1.0, 100.0])
bad_attempts = st.sampled_from([0, 101, 1.5, True, "1", 2**63, -(2**63) - 1])
priorities = st.integers(-(10**9), 10**9)
bad_priorities = st.sampled_from([10**9 + 1, -(10**9) - 1, 2**64, 0.5, False, "0"])
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
env_values = st.text(max_size=5) | st.integers() | st.floats(allow_nan=False) | st.booleans()
envs = st.dictionaries(env_names, env_values, max_size=3)
bad_envs = st.sampled_from(
    [{"1A": "x"}, {"A\n": "x"}, {"": "x"}, {"A-B": "x"}, {"A": None}, {"A": []}, {"A": {}}, []]
)
cwds = st.text(min_size=1, max_size=12) | st.just("d" * 4096)
bad_cwds = st.sampled_from(["", "d" * 4097, 1, ["d"]])
labels = st.lists(names, unique=True, max_size=4) | st.just([f"l{i}" for i in range(100)])
bad_labels = st.sampled_from(
    [["a", "a"], [""], ["a\n"], "a", [1], [f"l{i}" for i in range(101)], [True, 1]]
)
commands = st.text(min_size=1, max_size=12) | st.lists(st.text(max_size=6), min_size=1, max_size=3)
bad_commands = st.sampled_from(["", [], [1], ["a", None], None, {"sh": "x"}, 0])
depends = st.lists(names, unique=True, max_size=3)
bad_depends = st.sampled_from([["a", "a"], "a", [1], ["a\n"], [""], [["a"]], [{"a": 1}]])

TASK_FIELDS: dict[str, tuple[Any, Any]] = {
    "command": (commands, bad_commands),
    "depends_on": (depends, bad_depends),
    "duration": (durations, bad_durations),
    "max_attempts": (attempts, bad_attempts),
    "env": (envs, bad_envs),
    "cwd": (cwds, bad_cwds),
    "labels": (labels, bad_labels),
    "priority": (priorities, bad_priorities),
    "retry_delay": (durations, bad_durations),
}
DEFAULT_FIELDS = {k: v for k, v in TASK_FIELDS.items() if k not in ("command", "depends_on")}


@st.composite
def fields(draw: st.DrawFn, known: dict[str, tuple[Any, Any]], bad: bool) -> dict[str, Any]:
    """Some of ``known``; when ``bad``, one of them just outside the schema, or a stray key."""
    chosen = draw(st.lists(st.sampled_from(sorted(known)), unique=True, max_size=len(known)))
    out = {key: draw(known[key][0]) for key in chosen}
    if bad:
        how = draw(st.sampled_from([*sorted(known), "unknown", "wrong type"]))
        if how == "unknown":
            out[draw(st.sampled_from(["comand", "deps", "Command", ""]))] = draw(wrong)
        elif how == "wrong type":
            out[draw(st.sampled_from(sorted(known)))] = draw(wrong)
        else:
            out[how] = draw(known[how][1])
    return out


@st.composite
def tasks(draw: st.DrawFn, bad: bool) -> Any:
    task = draw(fields(TASK_FIELDS, bad))
    if not bad or draw(st.booleans()):
        task.setdefault("command", draw(commands))
    return task


@st.composite
def workflows(draw: st.DrawFn) -> Any:
    """A workflow document with at most one spot just outside the schema."""
    where = draw(st.sampled_from([None, "name", "description", "defaults", "tasks", "task"]))
    doc: dict[str, Any] = {"name": draw(bad_names if where == "name" else names)}
    if where == "description" or draw(st.booleans()):
        doc["description"] = (
            draw(st.sampled_from(["d" * 10001, 1, None]))
            if where == "description"
            else draw(st.text(max_size=20) | st.just("d" * 10000))
        )
    if where == "defaults" or draw(st.booleans()):
        doc["defaults"] = draw(fields(DEFAULT_FIELDS, where == "defaults"))
    keys = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    if where == "tasks":
        keys[0] = draw(bad_names)
    bad_task = draw(st.sampled_from(keys)) if where == "task" else None
    doc["tasks"] = {key: draw(tasks(key == bad_task)) for key in keys}
    if where == "tasks" and draw(st.booleans()):
        doc["tasks"] = draw(st.sampled_from([{}, [], None, "a"]))
    return doc


@settings(max_examples=400 * RUNS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_workflow_problems_exactly_when_jsonschema_refuses(doc: dict[str, Any]) -> None:
    judged_valid = JUDGE.is_valid(doc)
    if fast_check(SCHEMA)(doc):
        assert judged_valid, doc
    assert (schema_problems(doc, Locator(doc)) == []) == judged_valid, doc


#: Request bodies: the request schemas with their fields, valid and just outside.
runner_names = st.text(min_size=1, max_size=10) | st.just("r" * 200)
bad_runner_names = st.sampled_from(["", "r" * 201, 1, None, ["r"]])
body_labels = st.lists(st.text(min_size=1, max_size=5), max_size=3)
bad_body_labels = st.sampled_from([[""], "gpu", [1], [None], ["x"] * 101])
waits = st.integers(0, 60) | st.floats(min_value=0, allow_nan=False, allow_infinity=False)
bad_waits = st.sampled_from([-1, -0.001, "1", True, None])
exit_codes = st.none() | st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0.0, 2.0])
bad_exit_codes = st.sampled_from([2**63, -(2**63) - 1, 1.5, True, "0"])
outputs = st.text(max_size=20)
messages = st.none() | st.text(max_size=10)
NEXT_FIELDS = {
    "runner": (runner_names, bad_runner_names),
    "labels": (body_labels, bad_body_labels),
}
CLAIM_FIELDS = {**NEXT_FIELDS, "wait": (waits, bad_waits)}
RESULT_FIELDS = {
    "status": (st.sampled_from(["completed", "failed"]), st.sampled_from(["done", "", None])),
    "exit_code": (exit_codes, bad_exit_codes),
    "output": (outputs, st.sampled_from([None, 1, ["x"]])),
    "message": (messages, st.sampled_from([1, ["x"], {}])),
}


@st.composite
def results(draw: st.DrawFn) -> dict[str, Any]:
    bad = draw(st.sampled_from([None, "result", "next"]))
    body = draw(fields(RESULT_FIELDS, bad == "result"))
    if bad != "result" or draw(st.booleans()):
        body.setdefault("status", draw(st.sampled_from(["completed", "failed"])))
    if bad == "next" or draw(st.booleans()):
        body["next"] = draw(fields(NEXT_FIELDS, bad == "next"))
        body["next"].setdefault("runner", draw(runner_names))
    return body


@st.composite
def claims(draw: st.DrawFn, known: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    bad = draw(st.booleans())
    body = draw(fields(known, bad))
    if not bad or draw(st.booleans()):
        body.setdefault("runner", draw(runner_names))
    return body


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
BODIES = {
    "claim": (bodies.CLAIM, claims(CLAIM_FIELDS)),
    "next": (bodies.NEXT, claims(NEXT_FIELDS)),
    "result": (bodies.RESULT, results()),
    "heartbeat": (bodies.HEARTBEAT, claims({"runner": NEXT_FIELDS["runner"]})),
}


@pytest.mark.parametrize("name", sorted(BODIES))
@settings(max_examples=200 * RUNS, deadline=None)
@given(data=st.data())
def test_body_check_never_looser_than_jsonschema(name: str, data: st.DataObject) -> None:
    schema, near = BODIES[name]
    body = data.draw(near | anything)
    judged_valid = Draft202012Validator(schema).is_valid(body)
    if fast_check(schema)(body):
        assert judged_valid, body
    elif judged_valid:
        # the fast check is stricter only for values JSON cannot carry; none are made here
        pytest.fail(f"a valid body missed the fast path: {body!r}")
