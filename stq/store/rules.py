"""Pure state rules (docs/semantics.md), kept apart from SQL so they read as rules.

The SQL store asks these functions what a change means; they never touch a
connection, so they are unit-tested directly (tests/unit/test_rules.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from stq.model import AttemptReason, AttemptStatus, TaskState, WorkflowState
from stq.settings import MAX_OUTPUT_BYTES
from stq.utf8 import char_start


def attempts_left(max_attempts: int, attempts_used: int, budget_base: int) -> int:
    """Attempts still allowed: the budget restarts at each retry (``budget_base``)."""
    return max(0, max_attempts - (attempts_used - budget_base))


def state_after_failure(max_attempts: int, attempts_used: int, budget_base: int) -> TaskState:
    """A failed attempt sends its task back to ``todo`` while attempts are left."""
    if attempts_left(max_attempts, attempts_used, budget_base) > 0:
        return TaskState.TODO
    return TaskState.FAILED


def workflow_state(counts: Mapping[str, int]) -> WorkflowState:
    """Running until every task is terminal; then completed only if all completed."""
    if counts.get(TaskState.TODO, 0) or counts.get(TaskState.IN_PROCESS, 0):
        return WorkflowState.RUNNING
    if counts.get(TaskState.FAILED, 0):
        return WorkflowState.FAILED
    return WorkflowState.COMPLETED


def labels_match(task_labels: Collection[str], runner_labels: Collection[str]) -> bool:
    """A runner may claim a task only when it has every one of the task's labels."""
    return set(task_labels) <= set(runner_labels)


def cancel_asked(attempt_reason: str | None, task_state: str) -> bool:
    """Whether an attempt's command must stop: its task ended (another attempt finished
    it, or a cancel failed it), or the attempt itself was cancelled. A cancelled attempt
    stays cancelled after a retry puts its task back to todo: its command must still
    stop, or it would run beside the next attempt."""
    return TaskState(task_state).terminal or attempt_reason == AttemptReason.CANCELLED


def expiry(
    deadline: float | None, heartbeat: float, now: float, heartbeat_timeout: float
) -> tuple[AttemptStatus, AttemptReason, float] | None:
    """What a running attempt has become at ``now`` and since when, or None if it still runs.

    Passing the task's duration wins over a lost heartbeat when both apply:
    the duration is the user's own limit and the more telling reason. The
    time is the deadline (or the heartbeat timeout's end), not ``now``: expiry
    is applied lazily, whenever the store is next used, and the attempt's
    ``finished`` and the retry delay after it must not depend on when that was.
    """
    if deadline is not None and now >= deadline:
        return AttemptStatus.TIMED_OUT, AttemptReason.DURATION_EXCEEDED, deadline
    if now - heartbeat >= heartbeat_timeout:
        return AttemptStatus.FAILED, AttemptReason.HEARTBEAT_LOST, heartbeat + heartbeat_timeout
    return None


def failure_reason(exit_code: int | None, message: str | None) -> str:
    """The reason stored for a failed attempt: the runner's message, else its exit code."""
    if message:
        return message
    if exit_code is not None:
        return f"exit code {exit_code}"
    return "failed"


def keep_tail(text: str, limit: int = MAX_OUTPUT_BYTES) -> str:
    """The last ``limit`` bytes of ``text`` as UTF-8, cut at a character boundary."""
    data = text.encode("utf-8", errors="replace")  # a lone surrogate cannot be stored
    if len(data) <= limit:
        return data.decode("utf-8")
    tail = data[len(data) - limit :]
    return tail[char_start(tail) :].decode("utf-8", errors="replace")
