"""``retry_delay: 0`` is allowed, so a task can take back its defaults' delay."""

from __future__ import annotations

import pytest

from stq.errors import WorkflowInvalid
from stq.loader import load_workflow_text

DOC = """\
name: rd
defaults: {retry_delay: 30s}
tasks:
  a: {command: 'true', retry_delay: 0}
  b: {command: 'true', retry_delay: "0s"}
  c: {command: 'true'}
"""


def test_a_task_takes_back_the_default_delay() -> None:
    spec = load_workflow_text(DOC, "rd.yaml")
    assert [t.retry_delay for t in spec.tasks] == [0.0, 0.0, 30.0]


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("a: {command: 'true', retry_delay: -1}", "tasks.a.retry_delay"),
        ("a: {command: 'true', duration: 0}", "tasks.a.duration"),  # durations stay > 0
    ],
)
def test_below_zero_and_a_zero_duration_stay_errors(line: str, where: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow_text(f"name: x\ntasks:\n  {line}\n", "x.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith("x.yaml:3:") and where in str(problem)
