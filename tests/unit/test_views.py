"""The words for waits and runners: every kind, the edges, older and newer servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stq.cli.progress import counts_line, reason_text, state_text, task_table, workflow_head
from stq.cli.views import (
    ago,
    clock_time,
    details_table,
    no_attempts,
    params_line,
    runners_table,
    wait_text,
    waits_table,
)

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("waiting_for", "text"),
    [
        ({"kind": "dependencies", "tasks": ["a", "b"], "more": 0}, "waits for a, b"),
        ({"kind": "dependencies", "tasks": ["a"], "more": 19}, "waits for a (+19 more)"),
        (
            {"kind": "labels", "labels": ["gpu", "big"]},
            "waits for a runner with labels gpu, big (none seen in the last 10 minutes)",
        ),
        ({"kind": "runner"}, "waits for a free runner"),
        ({"kind": "moon_phase"}, "waits (moon_phase)"),
        (None, None),
    ],
)
def test_each_kind_of_wait_reads_as_words(waiting_for: dict | None, text: str | None) -> None:
    assert wait_text(waiting_for) == text


def test_a_retry_delay_ends_at_a_local_clock_time() -> None:
    until = "2026-12-07T12:00:05.250Z"
    local = datetime(2026, 12, 7, 12, 0, 5, tzinfo=UTC).astimezone().strftime("%H:%M:%S")
    assert wait_text({"kind": "retry_delay", "until": until}) == f"retry delay until {local}"
    assert clock_time("soon") == "soon" and clock_time(None) == "an unknown time"


def test_names_from_a_workflow_cannot_drive_the_terminal() -> None:
    text = wait_text({"kind": "dependencies", "tasks": ["a\x1b[2J"], "more": 0})
    assert text == "waits for a\\x1b[2J"


def test_the_waits_table_lists_only_tasks_to_do_that_say_why() -> None:
    tasks = [
        {"name": "done", "state": "completed", "waiting_for": None},
        {"name": "next", "state": "todo", "waiting_for": {"kind": "runner"}},
        {"name": "old", "state": "todo"},  # a server older than waiting_for
    ]
    assert waits_table(tasks).splitlines() == [
        "WAITING TASK  WHY",
        "next          waits for a free runner",
    ]
    assert waits_table(tasks[:1] + tasks[2:]) == ""


TASK = {"id": "t7", "workflow_id": "w3", "state": "todo", "reason": None}


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (
            {"waiting_for": {"kind": "runner"}},
            "task t7 has no attempts yet: waits for a free runner",
        ),
        ({}, "task t7 has no attempts yet: it waits for its dependencies or a runner"),
        (
            {"state": "failed", "reason": "upstream_failed"},
            "task t7 has no attempts and will get none: a task it depends on failed "
            "(stq retry w3 runs it again)",
        ),
        (
            {"state": "failed", "reason": "cancelled"},
            "task t7 has no attempts: its workflow was cancelled before it ran "
            "(stq retry w3 runs it again)",
        ),
        (
            {"state": "completed", "reason": "skipped"},
            "task t7 has no attempts and will get none: it was skipped, as its run_if says",
        ),
    ],
)
def test_a_task_without_attempts_says_why(fields: dict, text: str) -> None:
    assert no_attempts({**TASK, **fields}) == text


def test_runners_table_shows_the_task_only_of_a_busy_runner() -> None:
    runners = [
        {"name": "r1", "labels": ["gpu", "x"], "state": "busy", "attempt_id": "a1",
         "task_id": "t1", "last_seen": "2026-12-07T11:59:57.000Z"},
        {"name": "r2", "labels": [], "state": "gone", "attempt_id": None,
         "task_id": None, "last_seen": "2026-12-07T11:55:50.000Z"},
    ]  # fmt: skip
    assert runners_table(runners, NOW).splitlines() == [
        "NAME  LABELS  STATE  TASK  LAST SEEN",
        "r1    gpu,x   busy   t1    3s ago",
        "r2    -       gone   -     4m 10s ago",
    ]


def test_no_runners_is_one_line_that_says_so() -> None:
    assert runners_table([], NOW) == (
        "no runners seen in the last 10 minutes: start one with stq worker URL"
    )


@pytest.mark.parametrize(
    ("stamp", "text"),
    [
        ("2026-12-07T12:00:02.000Z", "0s ago"),  # the server's clock runs a little ahead
        ("2026-12-07T10:58:00.000Z", "1h 2m ago"),
        (None, "-"),
        ("2026-12-07T11:00:00", "-"),  # no zone: not comparable
    ],
)
def test_ago_copes_with_clocks_and_odd_stamps(stamp: str | None, text: str) -> None:
    assert ago(stamp, NOW) == text


def test_params_read_as_the_param_flags_that_would_set_them() -> None:
    params = {"BRANCH": "main", "NOTE": "two words", "EMPTY": "", "ESC": "a\x1b[2J"}
    assert params_line(params) == ("params: BRANCH=main NOTE='two words' EMPTY='' ESC='a\\x1b[2J'")
    assert params_line({}) == "" and params_line(None) == ""


def test_details_list_only_tasks_with_a_description_or_a_run_if_of_their_own() -> None:
    tasks = [
        {"name": "build", "run_if": "on_success", "description": None},
        {"name": "test", "run_if": "on_success", "description": "Unit tests\non every Python"},
        {"name": "notify", "run_if": "on_failure", "description": None},
        {"name": "cleanup", "run_if": "always", "description": "Remove build/"},
    ]
    assert details_table(tasks).splitlines() == [
        "TASK     RUN IF      DESCRIPTION",
        "test                 Unit tests on every Python",
        "notify   on_failure",
        "cleanup  always      Remove build/",
    ]
    assert details_table(tasks[:1]) == ""
    assert details_table([{"name": "old"}]) == ""  # a server older than these fields


def test_the_expansions_of_a_matrix_task_are_one_row() -> None:
    def expansion(name: str) -> dict:
        return {"name": name, "run_if": "always", "description": "Tests", "matrix_of": "test"}

    tasks = [
        expansion("test-311"),
        expansion("test-312"),
        {"name": "test-old", "run_if": "always"},
    ]
    assert details_table(tasks).splitlines() == [
        "TASK      RUN IF  DESCRIPTION",
        "test-*    always  Tests",
        "test-old  always",
    ]


def test_a_column_nobody_fills_is_left_out() -> None:
    only_run_if = [{"name": "n", "run_if": "always"}]
    assert details_table(only_run_if).splitlines() == ["TASK  RUN IF", "n     always"]
    only_text = [{"name": "n", "description": "hello"}]
    assert details_table(only_text).splitlines() == ["TASK  DESCRIPTION", "n     hello"]


def test_a_long_description_is_wrapped_whole_within_80_columns() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    lines = details_table([{"name": "step", "description": words}]).splitlines()
    assert all(len(line) <= 80 for line in lines) and len(lines) > 3
    assert " ".join(line[6:].strip() for line in lines[1:]) == words
    assert all(line.startswith("      ") for line in lines[2:])  # under DESCRIPTION


SKIPPED = {"id": "t4", "name": "notify", "state": "completed", "reason": "skipped",
           "run_if": "on_failure", "attempts_used": 0}  # fmt: skip


def test_a_skipped_task_reads_as_completed_yet_distinct() -> None:
    assert state_text(SKIPPED) == "completed (skipped)"
    assert state_text({**SKIPPED, "reason": None}) == "completed"
    assert state_text({"state": "todo"}) == "to do"
    assert reason_text(SKIPPED, None) == ""  # the state says it all


def test_skipped_tasks_count_as_completed_and_are_said_so() -> None:
    counts = {"completed": 3, "failed": 0, "in_process": 0, "todo": 0}
    assert counts_line(counts, skipped=1) == "3/3 done: 3 completed (1 skipped)"
    assert counts_line(counts) == "3/3 done: 3 completed"
    done = {"id": "t1", "name": "build", "state": "completed", "reason": None,
            "attempts_used": 1}  # fmt: skip
    wf = {"id": "w1", "name": "ci", "state": "completed", "counts": {**counts, "completed": 2},
          "tasks": [done, SKIPPED]}  # fmt: skip
    assert workflow_head(wf) == "workflow ci (w1): completed, 2/2 done: 2 completed (1 skipped)"
    rows = task_table(wf, {}).splitlines()
    assert rows[0].split() == ["TASK", "TASK", "ID", "STATE", "ATTEMPTS", "SECONDS", "REASON"]
    assert rows[2].split() == ["notify", "t4", "completed", "(skipped)", "0"]
