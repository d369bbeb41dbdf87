"""``submit_body``: the file's document as JSON, checked exactly as the server will check it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stq.errors import UsageError, WorkflowInvalid
from stq.loader import load_workflow_document, load_workflow_file, submit_body
from stq.settings import MAX_BODY_BYTES

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "workflows" / "examples").glob("*.yaml"))

CI = """\
name: ci
description: Tests — on every Python
params: {BRANCH: main, DAY: 2026-12-06, LEVEL: 0x10, DEBUG: no, RATIO: 1.50}
defaults: &defaults
  env: {STAGE: prod, N: 007, ON: yes}
  duration: 1h30m
  run_if: on_success
tasks:
  test:
    description: Unit tests
    command: tox -e "py$PY"
    matrix: {PY: ["3.10", 311, 0x10], FAST: [true, false]}
    env: {E: 1e3, F: .inf, G: ~hello}
  package:
    <<: {command: make dist, priority: 5}
    priority: 7
    depends_on: [test]
    max_attempts: 1.0
  notify:
    command: [./notify.sh, "é"]
    depends_on: [package, test-3.10-true]
    run_if: on_failure
    retry_delay: 0
"""


@pytest.fixture
def ci(tmp_path: Path) -> Path:
    path = tmp_path / "ci.yaml"
    path.write_text(CI, encoding="utf-8")
    return path


def test_the_body_is_the_document_as_written_not_expanded(ci: Path) -> None:
    _, body = submit_body(ci)
    doc = json.loads(body)
    assert list(doc) == ["name", "description", "params", "defaults", "tasks"]
    assert list(doc["tasks"]) == ["test", "package", "notify"]
    assert doc["tasks"]["test"]["matrix"] == {"PY": ["3.10", 311, 16], "FAST": [True, False]}
    assert "env" not in doc["tasks"]["package"]  # defaults are not copied into tasks
    assert doc["defaults"]["duration"] == "1h30m"
    assert doc["tasks"]["package"] == {
        "command": "make dist",
        "priority": 7,
        "depends_on": ["test"],
        "max_attempts": 1.0,
    }


def test_env_and_params_values_are_sent_as_the_text_written(ci: Path) -> None:
    doc = json.loads(submit_body(ci)[1])
    assert doc["params"] == {
        "BRANCH": "main",
        "DAY": "2026-12-06",
        "LEVEL": "0x10",
        "DEBUG": "no",
        "RATIO": "1.50",
    }
    assert doc["defaults"]["env"] == {"STAGE": "prod", "N": "007", "ON": "yes"}
    assert doc["tasks"]["test"]["env"] == {"E": "1e3", "F": ".inf", "G": "~hello"}


def test_compact_utf8_json(ci: Path) -> None:
    body = submit_body(ci)[1]
    assert body.startswith(b'{"name":"ci","description":"Tests \xe2\x80\x94 on every Python",')
    assert b", " not in body and b": " not in body.replace(b'"tox -e ', b"")
    assert "é".encode() in body


def test_the_server_builds_the_spec_the_cli_checked(ci: Path) -> None:
    spec, body = submit_body(ci)
    assert spec == load_workflow_file(ci)
    assert load_workflow_document(json.loads(body)) == spec
    names = [t.name for t in spec.tasks]
    assert names[:2] == ["test-3.10-true", "test-3.10-false"] and "test-16-true" in names
    assert spec.tasks[0].env["E"] == "1e3" and spec.params["LEVEL"] == "0x10"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_reaches_the_server_unchanged(path: Path) -> None:
    spec, body = submit_body(path)
    assert load_workflow_document(json.loads(body)) == spec == load_workflow_file(path)


def test_params_are_applied_in_the_body(ci: Path) -> None:
    spec, body = submit_body(ci, {"BRANCH": "release", "LEVEL": "3"})
    doc = json.loads(body)
    assert (doc["params"]["BRANCH"], doc["params"]["LEVEL"]) == ("release", "3")
    assert load_workflow_document(json.loads(body)) == spec
    assert spec == load_workflow_file(ci, params={"BRANCH": "release", "LEVEL": "3"})
    assert all(t.env["BRANCH"] == "release" for t in spec.tasks)
    with pytest.raises(UsageError, match="--param NOPE is not a param of"):
        submit_body(ci, {"NOPE": "1"})


def test_an_invalid_file_has_the_same_problems_as_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        CI.replace("run_if: on_failure", "run_if: sometimes").replace('"3.10", ', "3.0, ")
    )
    with pytest.raises(WorkflowInvalid) as loaded:
        load_workflow_file(path)
    with pytest.raises(WorkflowInvalid) as sent:
        submit_body(path)
    assert [str(p) for p in sent.value.problems] == [str(p) for p in loaded.value.problems]
    assert len(sent.value.problems) == 2
    missing = tmp_path / "missing.yaml"
    with pytest.raises(WorkflowInvalid, match="cannot read the file"):
        submit_body(missing)


def test_a_body_over_the_limit_is_refused_at_the_top_of_the_file(tmp_path: Path) -> None:
    # JSON writes a tab as two characters: a 9 MiB command of tabs is an 18 MiB body
    path = tmp_path / "tabs.yaml"
    path.write_text('name: w\ntasks:\n  a: {command: "' + "\t" * (9 * 2**20) + '"}\n')
    assert len(load_workflow_file(path).tasks) == 1
    with pytest.raises(WorkflowInvalid) as caught:
        submit_body(path)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:1:1: The workflow as JSON (18874")
    assert f") is over the {MAX_BODY_BYTES} byte limit. Use fewer aliases" in problem.message


def test_a_hundred_thousand_tasks_with_big_defaults_make_a_small_body(tmp_path: Path) -> None:
    env = "".join(f"    V{i}: {'v' * 200}\n" for i in range(40))  # 8 KB of defaults
    tasks = "".join(f"  t{i}: {{command: x}}\n" for i in range(100_000))
    path = tmp_path / "big.yaml"
    path.write_text(f"name: w\ndefaults:\n  duration: 10m\n  env:\n{env}tasks:\n{tasks}")
    spec, body = submit_body(path)
    assert len(spec.tasks) == 100_000 and spec.tasks[-1].env["V39"] == "v" * 200
    # copied into every task, the defaults alone would be 800 MB
    assert len(body) < 1.2 * path.stat().st_size
    assert len(body) < MAX_BODY_BYTES // 4
