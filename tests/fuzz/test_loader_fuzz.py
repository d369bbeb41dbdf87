"""Mutated YAML into the loader: only located errors (``FILE:LINE:COL: message``) come out.

Seeds are the shipped examples plus a compact workflow using every field;
mutations act on characters YAML gives meaning to, on whole lines and on
indentation. ``STQ_FULL_FAULTS=1`` tries ten times more cases.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_text
from stq.model import WorkflowSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "workflows" / "examples").glob("*.yaml"))
SEED = """\
name: seed
description: every field
defaults: &d {duration: 10m, max_attempts: 2, env: {A: "1", B: 2, C: true}}
tasks:
  a: {command: echo a, priority: 3, labels: [x], retry_delay: 1m30s}
  b:
    <<: *d
    command: [sh, -c, "echo b"]
    depends_on: [a]
    cwd: work
  c:
    command: |
      echo c
    depends_on: [a, b]
    env: {A: "2"}
"""
SEEDS = [SEED] + [p.read_text() for p in EXAMPLES]
FILE = "fuzzed.yaml"
LOCATED = re.compile(rf"^{re.escape(FILE)}:\d+:\d+: \S")
SPECIAL = [*":-[]{}&*!|>'\"#%@`,?<\n\t \\", "<<: ", "*d", "&x ", "- ", "\ufeff", "\x00"]
EXAMPLES_RUN = 3000 if os.environ.get("STQ_FULL_FAULTS") == "1" else 600


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A seed with a few character, line or indentation mutations."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "line", "indent"]))
        text = _mutate(draw, text, kind)
    return text


def _mutate(draw: st.DrawFn, text: str, kind: str) -> str:
    if kind == "line":
        lines = text.splitlines(keepends=True) or [""]
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["dup", "drop", "swap"]))
        if op == "dup":
            lines.insert(j, lines[i])
        elif op == "drop":
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    pos = draw(st.integers(0, len(text)))
    if kind == "indent":
        return text[:pos] + draw(st.sampled_from([" ", "  ", "\t", "\n "])) + text[pos:]
    piece = draw(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=3)))
    if kind == "insert":
        return text[:pos] + piece + text[pos:]
    end = pos + draw(st.integers(1, 8))
    return text[:pos] + (piece if kind == "replace" else "") + text[end:]


LINE_END = re.compile("\r\n|\r|\n")
LINE_END_BYTES = re.compile(b"\r\n|\r|\n")


def _check(text: str | bytes) -> None:
    try:
        spec = load_workflow_text(text, FILE)
    except WorkflowInvalid as ex:
        assert ex.problems, "an error with no problem in it"
        # lines as an editor counts them: LF, CRLF or a lone CR ends one
        ends = LINE_END.findall(text) if isinstance(text, str) else LINE_END_BYTES.findall(text)
        lines = len(ends) + 1
        for problem in ex.problems:
            assert LOCATED.match(str(problem)), str(problem)
            assert 1 <= problem.line <= lines + 1 and problem.col >= 1, str(problem)
    else:
        assert isinstance(spec, WorkflowSpec) and spec.tasks


@settings(max_examples=EXAMPLES_RUN, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_yaml_gives_only_located_errors(text: str) -> None:
    _check(text)


@settings(max_examples=EXAMPLES_RUN // 3, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_give_only_located_errors(data: bytes) -> None:
    _check(data)


@settings(max_examples=EXAMPLES_RUN // 3, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=12,
    )
)
def test_structured_documents_give_only_located_errors(value: object) -> None:
    _check(json.dumps({"name": "j", "tasks": {"t": value}}))
    _check(json.dumps(value))


def test_found_by_fuzzing_a_mapping_in_depends_on() -> None:
    """Once a TypeError from the schema fast path (``set()`` of an unhashable dependency)."""
    _check("name: x\ntasks:\n  a: {command: echo, depends_on: [{b: 1}, [c]]}\n")
    _check(json.dumps({"name": "x", "tasks": {"a": {"command": "e", "depends_on": [{}]}}}))
