"""The words for waits and runners: every kind, the edges, older and newer servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stq.views import ago, clock_time, no_attempts, runners_table, wait_text, waits_table

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
