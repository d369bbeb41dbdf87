"""Durations: every form a workflow file allows, the ones it does not, and display."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stq.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90),
        (90, 90),
        (1.5, 1.5),
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("1m30s", 90),
        ("2h", 7200),
        ("1h0m5s", 3605),
        (" 5s ", 5),
    ],
)
def test_parses_every_allowed_form(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "0s",
        "-5",
        -1,
        0,
        "1.5s",
        "10x",
        "30m1h",
        "1 h",
        "h",
        True,
        None,
        [1],
        float("inf"),
        float("nan"),
    ],
)
def test_refuses_what_is_not_a_positive_duration(value: object) -> None:
    with pytest.raises(ValueError, match=r"duration|greater than 0"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5400, "1h30m"), (90, "90s"), (1.5, "1.5s"), (120, "2m"), (3605, "1h5s"), (0.25, "0.25s")],
)
def test_formats_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**7))
def test_format_parses_back_to_the_same_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
