"""``transitions.inline``: integer parameters written into a statement sent with a COMMIT."""

from __future__ import annotations

import pytest

from stq.store.transitions import inline


def test_each_placeholder_gets_its_integer() -> None:
    assert inline("UPDATE t SET n = n + ? WHERE id = ?", (-3, 12)) == (
        "UPDATE t SET n = n + -3 WHERE id = 12"
    )
    assert inline("NOTIFY stq_claimable", ()) == "NOTIFY stq_claimable"


def test_a_count_that_does_not_match_is_refused() -> None:
    with pytest.raises(ValueError):
        inline("SELECT ?, ?", (1,))
    with pytest.raises(ValueError):
        inline("SELECT ?", (1, 2))


def test_only_integers_are_written_in() -> None:
    with pytest.raises(ValueError):
        inline("SELECT ?", ("1; DROP TABLE task",))  # type: ignore[arg-type]
