"""The time left on the progress line: the server's estimate, written as on the dashboard."""

from __future__ import annotations

import pytest

from stq.cli.progress import duration_text, terminal_line, time_left_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.4, "59s"),
        (59.5, "1m 00s"),  # half up, as the dashboard's Math.round
        (135, "2m 15s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (3725, "1h 02m"),
        (-3, "0s"),
    ],
)
def test_durations_read_as_on_the_dashboard(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_only_a_running_workflow_with_an_estimate_has_a_time_left() -> None:
    assert time_left_text({"state": "running", "time_left": 135}) == "~2m 15s"
    assert time_left_text({"state": "running", "time_left": 0}) == "~0s"
    assert time_left_text({"state": "running", "time_left": None}) == ""
    assert time_left_text({"state": "running"}) == ""  # a summary: not read with its tasks
    assert time_left_text({"state": "completed", "time_left": 135}) == ""


def test_the_terminal_line_says_the_time_left_before_the_counts() -> None:
    counts = {"completed": 1, "failed": 0, "in_process": 1, "todo": 2}
    line = terminal_line(counts, 12.34, "~2m 15s", ["build\x1b[2J"])
    assert line == (
        "[#####               ]  12.3s (time left ~2m 15s) "
        "1/4 done: 1 completed, 1 in process, 2 to do | running: build\\x1b[2J"
    )
    assert "time left" not in terminal_line(counts, 1.0, "", [])
