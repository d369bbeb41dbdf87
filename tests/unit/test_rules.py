"""The pure state rules of stq.store.rules (no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stq.model import AttemptReason, AttemptStatus, TaskState, WorkflowState
from stq.store import rules


def test_attempts_left_counts_since_last_retry() -> None:
    assert rules.attempts_left(3, 0, 0) == 3
    assert rules.attempts_left(3, 3, 0) == 0
    assert rules.attempts_left(3, 5, 3) == 1  # retried after 3 attempts, 2 more used
    assert rules.attempts_left(1, 9, 0) == 0  # never negative


def test_state_after_failure() -> None:
    assert rules.state_after_failure(2, 1, 0) == TaskState.TODO
    assert rules.state_after_failure(2, 2, 0) == TaskState.FAILED
    assert rules.state_after_failure(1, 2, 1) == TaskState.FAILED


def test_workflow_state_from_counts() -> None:
    assert rules.workflow_state({"todo": 1, "completed": 3}) == WorkflowState.RUNNING
    assert rules.workflow_state({"in_process": 1, "failed": 1}) == WorkflowState.RUNNING
    assert rules.workflow_state({"completed": 3, "failed": 1}) == WorkflowState.FAILED
    assert rules.workflow_state({"completed": 3, "todo": 0}) == WorkflowState.COMPLETED


def test_labels_match_needs_every_task_label() -> None:
    assert rules.labels_match((), ())
    assert rules.labels_match(("gpu",), ("gpu", "big"))
    assert not rules.labels_match(("gpu", "big"), ("gpu",))


def test_expiry_duration_wins_then_heartbeat() -> None:
    assert rules.expiry(None, 0.0, 59.9, 60) is None
    assert rules.expiry(None, 0.0, 61.0, 60) == (
        AttemptStatus.FAILED,
        AttemptReason.HEARTBEAT_LOST,
        60.0,  # when the timeout ran out, not when it was noticed
    )
    assert rules.expiry(10.0, 0.0, 100.0, 60) == (
        AttemptStatus.TIMED_OUT,
        AttemptReason.DURATION_EXCEEDED,
        10.0,
    )
    assert rules.expiry(10.0, 5.0, 9.0, 60) is None


def test_failure_reason() -> None:
    assert rules.failure_reason(3, None) == "exit code 3"
    assert rules.failure_reason(3, "could not start") == "could not start"
    assert rules.failure_reason(None, None) == "failed"


def test_keep_tail_short_text_unchanged_and_surrogates_stored() -> None:
    assert rules.keep_tail("hello", 10) == "hello"
    assert rules.keep_tail("a\udcffb", 10) == "a?b"


@given(st.text(), st.integers(min_value=0, max_value=64))
def test_keep_tail_is_a_suffix_within_the_limit(text: str, limit: int) -> None:
    clean = text.encode("utf-8", "replace").decode("utf-8")
    kept = rules.keep_tail(text, limit)
    assert len(kept.encode()) <= limit or len(clean.encode()) <= limit
    assert clean.endswith(kept)
    assert len(kept.encode()) > limit - 4 or kept == clean  # cut at most 3 bytes of a character
