"""The words progress lines and task tables use: counts that add up, reasons, one form."""

from __future__ import annotations

import pytest

from stq.cli.progress import SHOWN, attempts_cell, counts_line, reason_text, table, workflow_state


def test_done_counts_every_terminal_task_and_says_how_many_failed() -> None:
    assert counts_line({"completed": 7, "failed": 4}) == "11/11 done: 7 completed, 4 failed"
    line = counts_line({"completed": 2, "failed": 1, "in_process": 3, "todo": 4})
    assert line == "3/10 done: 2 completed, 1 failed, 3 in process, 4 to do"


def test_state_words_are_lowercase_everywhere() -> None:
    assert all(word == word.lower() for word in SHOWN.values())


@pytest.mark.parametrize(
    ("task", "last", "said"),
    [
        ({"state": "failed", "reason": "upstream_failed"}, None, "upstream_failed"),
        (
            {"state": "failed", "reason": None},
            {"reason": "duration_exceeded"},
            "duration_exceeded",
        ),
        ({"state": "failed", "reason": None}, {"reason": None, "exit_code": 2}, "exit code 2"),
        ({"state": "failed", "reason": None}, None, "see stq logs"),
        ({"state": "completed", "reason": "skipped"}, None, ""),
        ({"state": "completed", "reason": None}, None, ""),
    ],
)
def test_reason_says_why_a_task_ended(task: dict, last: dict | None, said: str) -> None:
    assert reason_text(task, last) == said


def test_a_workflow_whose_tasks_were_cancelled_says_so() -> None:
    tasks = [{"reason": None}, {"reason": "cancelled"}]
    assert workflow_state({"state": "failed", "tasks": tasks}) == "failed (cancelled)"
    assert workflow_state({"state": "failed", "tasks": tasks[:1]}) == "failed"
    assert workflow_state({"state": "failed"}) == "failed"  # no tasks read: cannot tell


def test_a_long_reason_gives_way_before_the_name_and_the_table_fits() -> None:
    rows = [("a-rather-long-task-name", "failed", "cannot start: program " + "x" * 80)]
    text = table(("TASK", "STATE", "REASON"), rows, width=60, give_way=((-1, 17), (0, 8)))
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "a-rather-long-task-name" in text and text.endswith("~")


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ({"attempts_used": 0, "attempts_this_round": 0}, "0"),
        ({"attempts_used": 3, "attempts_this_round": 3}, "3"),
        ({"attempts_used": 2, "attempts_this_round": 1}, "2 (1 since retry)"),
        ({"attempts_used": 1, "attempts_this_round": 0}, "1 (0 since retry)"),
        ({"attempts_used": 2}, "2"),  # a server that does not count rounds
    ],
)
def test_attempts_say_how_many_since_a_retry(task: dict, said: str) -> None:
    assert attempts_cell(task) == said
