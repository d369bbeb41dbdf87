"""The request-body fast path never accepts what jsonschema would refuse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from stq.api import bodies
from stq.api.quickcheck import surely_valid

SCHEMAS = {"claim": bodies.CLAIM, "result": bodies.RESULT, "heartbeat": bodies.HEARTBEAT}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
    st.sampled_from(["", "r", "completed", "failed", "x" * 201]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
keys = st.sampled_from(
    ["runner", "labels", "wait", "status", "exit_code", "output", "message", "next", "extra"]
)
bodies_st = st.dictionaries(keys, st.one_of(values, st.dictionaries(keys, values, max_size=3)))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=120, deadline=None)
@given(doc=st.one_of(bodies_st, values))
def test_never_looser_than_jsonschema(name: str, doc: object) -> None:
    schema = SCHEMAS[name]
    if surely_valid(schema, doc):
        assert Draft202012Validator(schema).is_valid(doc), doc


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
    assert surely_valid(schema, doc)


@pytest.mark.parametrize(
    "doc",
    [{"runner": "r", "unknown": 1}, {"runner": ""}, {"runner": "r", "wait": -1}, {"wait": 1},
     {"runner": "r", "labels": [""]}, {"runner": True}, []],
)  # fmt: skip
def test_invalid_claims_are_left_to_jsonschema(doc: object) -> None:
    assert not surely_valid(bodies.CLAIM, doc)


def test_patterns_are_left_to_jsonschema() -> None:
    # a fast path using Python's re.search would let "$" match before a final newline,
    # which JSON Schema's "$" does not: jsonschema stays the judge of every pattern
    assert not surely_valid({"type": "string", "pattern": "^[a-z]+$"}, "gpu\n")
