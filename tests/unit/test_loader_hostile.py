"""Odd and hostile input: every way in is refused with a located, one-line problem.

Trailing newlines in names, aliases that repeat a long string, scalars whose
tag they do not fit, characters YAML does not allow.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_text, workflow_schema, yaml_source


def _problems(text: str | bytes) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "wf.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert all("\n" not in problem for problem in problems), problems
    return problems


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern":
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_schema_patterns_use_no_dollar_anchor() -> None:
    # Python's re.search lets $ match before a final "\n", ECMA-262 (JSON Schema's
    # dialect) does not: the schema must mean the same to jsonschema and to editors.
    patterns = list(_patterns(workflow_schema()))
    assert len(patterns) == 5  # names, durations, delays, env names, matrix strings
    assert all("$" not in pattern for pattern in patterns), patterns


TRAILING_NEWLINE = [
    ('name: "w\\n"\ntasks:\n  a: {command: x}\n', "wf.yaml:1:7: name: 'w\\n' must be"),
    ('name: w\ntasks:\n  "a\\n": {command: x}\n', "wf.yaml:3:3: tasks: task name 'a\\n' must be"),
    (
        'name: w\ntasks:\n  a: {command: x, labels: ["gpu\\n"]}\n',
        "wf.yaml:3:28: tasks.a.labels[0]: 'gpu\\n' must be",
    ),
    (
        'name: w\ntasks:\n  a: {command: x, env: {"X\\n": "1"}}\n',
        "wf.yaml:3:25: tasks.a.env: name 'X\\n' must be a letter",
    ),
    (
        'name: w\ntasks:\n  a: {command: x, duration: "1s\\n"}\n',
        "wf.yaml:3:29: tasks.a.duration: '1s\\n' must be a number of seconds",
    ),
    (
        'name: w\ntasks:\n  a: {command: x, depends_on: ["b\\n"]}\n  b: {command: x}\n',
        "wf.yaml:3:32: tasks.a.depends_on[0]: 'b\\n' must be",
    ),
]


@pytest.mark.parametrize(("text", "start"), TRAILING_NEWLINE)
def test_trailing_newline_is_refused_in_files(text: str, start: str) -> None:
    problem, *also = _problems(text)
    assert problem.startswith(start)
    assert also in ([], ["wf.yaml:3:32: tasks.a.depends_on[0]: unknown task 'b\\n'"])


def test_trailing_newline_is_refused_in_documents() -> None:
    doc = {
        "name": "w\n",
        "defaults": {"labels": ["gpu\n"], "retry_delay": "5s\n"},
        "tasks": {"a\n": {"command": "x", "env": {"X\n": "1"}, "depends_on": ["b\n"]}},
    }
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document(json.loads(json.dumps(doc)))
    assert sorted(p.path for p in caught.value.problems) == [
        "/defaults/labels/0",
        "/defaults/retry_delay",
        "/name",
        "/tasks",
        "/tasks/a\n/depends_on/0",
        "/tasks/a\n/depends_on/0",
        "/tasks/a\n/env",
    ]
    assert all("\n" not in p.message for p in caught.value.problems)


def test_a_non_printable_key_is_quoted_in_the_path() -> None:
    name, command = _problems('name: w\ntasks:\n  a: {command: x}\n  "b\\t": {command: 3}\n')
    assert name.startswith("wf.yaml:4:3: tasks: task name 'b\\t' must be")
    assert command.startswith("wf.yaml:4:20: tasks['b\\t'].command: 3 must be")


def test_aliases_of_a_long_string_are_refused_at_the_crossing_alias() -> None:
    long = "x" * 100_000
    text = f"name: x\ntasks:\n  a:\n    command: [&s '{long}'" + ", *s" * 3000 + "]\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    (problem,) = _problems(text)
    assert time.perf_counter() - start < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    # the file's size plus 100,001 per alias passes 16 MiB at the 167th alias
    alias = 167
    col = len("    command: [&s '") + len(long) + len("', *") + 4 * (alias - 1)
    assert problem == (
        f"wf.yaml:4:{col}: aliases expand this document past the size limit of 16 MiB; "
        "write it out or use fewer aliases"
    )


def test_each_alias_counts_its_anchored_text_per_use(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: w\ns: &s '0123456789'\nl: &l [*s, *s]\nx: [*l, *l]\ntasks:\n  a: {command: x}\n"
    expanded = len(text) + 2 * 11 + 2 * 23  # &s: 10 bytes + 1 node; &l: 1 node + two *s
    monkeypatch.setattr(yaml_source, "MAX_EXPANDED_BYTES", expanded)
    assert all("unknown field" in problem for problem in _problems(text))
    monkeypatch.setattr(yaml_source, "MAX_EXPANDED_BYTES", expanded - 1)
    (problem,) = _problems(text)
    assert problem.startswith("wf.yaml:4:9: aliases expand this document past the size limit")


def test_billion_empty_strings_are_refused_too() -> None:
    # an empty string weighs 1 (its node): ten to the twelfth of them is far past 16 MiB
    text = "name: w\na0: &a0 ['', '', '', '', '', '', '', '', '', '']\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 12)
    )
    (problem,) = _problems(text + "tasks:\n  a: {command: x}\n")
    assert problem.startswith("wf.yaml:9:10: ") and "aliases expand this document" in problem


BAD_SCALARS = [
    ("env: {A: !!bool maybe}", "5:14: 'maybe' is tagged !!bool but is not true or false"),
    ("max_attempts: !!int abc", "5:19: 'abc' is tagged !!int but is not an integer"),
    ("duration: !!float abc", "5:15: 'abc' is tagged !!float but is not a number"),
    ("priority: 0x_", "5:15: '0x_' looks like an integer but is not one; quote it if it is text"),
    (
        "max_attempts: " + "9" * 5000,
        "5:19: '99999999999999999999...' has 5000 digits; an integer may have at most 4300",
    ),
]


@pytest.mark.parametrize(("line", "expected"), BAD_SCALARS)
def test_scalars_that_do_not_fit_their_tag_are_located(line: str, expected: str) -> None:
    text = f"name: w\ntasks:\n  a:\n    command: x\n    {line}\n"
    assert _problems(text) == [f"wf.yaml:{expected}"]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize(("char", "code"), [("\x00", "0000"), ("\x07", "0007"), ("\x7f", "007F")])
def test_characters_yaml_refuses_are_located_on_one_line(char: str, code: str, eol: str) -> None:
    text = f"name: w{eol}tasks:{eol}  é: {{command: 'x{char}'}}{eol}"  # é: columns are characters
    assert _problems(text.encode()) == [
        f"wf.yaml:3:18: not valid YAML: unacceptable character U+{code}: control characters "
        f'are not allowed (remove it, or write "\\u{code}" in a double-quoted string)'
    ]


def test_a_cycle_through_a_non_printable_name_is_one_line() -> None:
    text = (
        'name: w\ntasks:\n  "a\\n": {command: x, depends_on: [b]}\n'
        '  b: {command: x, depends_on: ["a\\n"]}\n'
    )
    cycle = "wf.yaml:4:32: tasks.b.depends_on[0]: dependency cycle: 'a\\n' -> b -> 'a\\n'"
    assert cycle in _problems(text)


NEVER_RUN = "contains a NUL character (\\0): the command could never be run"

NULS = [
    ('  a: {command: "x\\0"}', "3:16: tasks.a.command"),
    ('  a: {command: [x, "\\x00"]}', "3:20: tasks.a.command[1]"),
    ('  a: {command: x, cwd: "d\\u0000"}', "3:24: tasks.a.cwd"),
    ('  a: {command: x, env: {A: "\\0"}}', "3:28: tasks.a.env.A"),
    ('  a: {command: x, matrix: {A: [b, "\\0"]}}', "3:35: tasks.a.matrix.A[1]"),
]


@pytest.mark.parametrize(("task", "where"), NULS)
def test_a_nul_where_the_command_gets_it_is_located(task: str, where: str) -> None:
    assert _problems(f"name: w\ntasks:\n{task}\n") == [f"wf.yaml:{where}: {NEVER_RUN}"]


def test_a_nul_in_params_and_defaults_is_located_once() -> None:
    text = (
        'name: w\nparams: {P: "\\0"}\ndefaults: {cwd: "\\0", env: {D: "\\0"}}\n'
        "tasks:\n  a: {command: x}\n  b: {command: y}\n"
    )
    assert _problems(text) == [
        f"wf.yaml:2:13: params.P: {NEVER_RUN}",
        f"wf.yaml:3:17: defaults.cwd: {NEVER_RUN}",
        f"wf.yaml:3:32: defaults.env.D: {NEVER_RUN}",
    ]


def test_a_nul_in_a_json_document_is_found_too() -> None:
    doc = {
        "name": "w",
        "params": {"P": "\x00"},
        "tasks": {"a": {"command": ["x", "y\x00"], "env": {"E": "\x00"}}},
    }
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_document(json.loads(json.dumps(doc)))
    assert sorted((p.path, p.message) for p in caught.value.problems) == [
        ("/params/P", f"params.P: {NEVER_RUN}"),
        ("/tasks/a/command/1", f"tasks.a.command[1]: {NEVER_RUN}"),
        ("/tasks/a/env/E", f"tasks.a.env.E: {NEVER_RUN}"),
    ]


def test_a_nul_in_a_description_is_refused_where_it_is() -> None:
    """PostgreSQL's text cannot hold a NUL, so no store could keep the description."""
    text = 'name: w\ndescription: "a\\0b"\ntasks:\n  a: {command: x, description: "\\0"}\n'
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(text, "w.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "w.yaml:2:14: description: contains a NUL character (\\0): "
        "a description is text and cannot hold one",
        "w.yaml:4:32: tasks.a.description: contains a NUL character (\\0): "
        "a description is text and cannot hold one",
    ]


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_lines_are_counted_as_editors_count_them(separator: str) -> None:
    """libyaml ends a line at NEL, LS and PS too; an editor does not, and nor do we."""
    text = f'name: w\ntasks:\n  a: {{command: "x{separator}y"}}\n  b: {{command: x, bad: 1}}\n'
    (problem,) = _problems(text)
    assert problem.startswith("wf.yaml:4:"), problem
    control = f"name: w\ntasks:\n  a: {{command: 'x{separator}y'}}\n  b: {{command: 'x\x07'}}\n"
    assert _problems(control.encode())[0].startswith("wf.yaml:4:18: not valid YAML"), control
