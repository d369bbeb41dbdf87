"""SPEC section 1's words as types: what a workflow is, what the store keeps.

Two families live here:

* ``WorkflowSpec`` and ``TaskSpec``: a workflow *as submitted*, normalized by
  the loader (defaults applied, durations in seconds, file order kept). The
  loader produces them, the store consumes them; nothing else builds them.
* ``Workflow``, ``Task``, ``Attempt``, ``Claim`` and ``ResultAck``: records
  *as stored*, read back by the store for the API. Times are POSIX seconds
  (floats); the API renders them as ISO 8601 UTC.

States are ``str`` enums whose values are exactly SPEC's JSON values, so they
serialize as themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: The header that makes a submit idempotent: a repeat of the key creates nothing.
IDEMPOTENCY_HEADER = "Idempotency-Key"

#: A command is a shell string (run under ``/bin/sh -c``) or an argv tuple.
Command = str | tuple[str, ...]


class TaskState(StrEnum):
    """Where a task is in its life (SPEC section 3)."""

    #: Waiting for its dependencies, its retry delay, or a runner.
    TODO = "todo"
    #: An attempt of it is running.
    IN_PROCESS = "in_process"
    #: One attempt completed (terminal).
    COMPLETED = "completed"
    #: Its last allowed attempt failed, an upstream task failed, or it was cancelled (terminal).
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED)

    @property
    def label(self) -> str:
        """How people see it: To Do, In Process, Completed, Failed."""
        return _TASK_STATE_LABELS[self]


_TASK_STATE_LABELS = {
    TaskState.TODO: "To Do",
    TaskState.IN_PROCESS: "In Process",
    TaskState.COMPLETED: "Completed",
    TaskState.FAILED: "Failed",
}


class TaskReason(StrEnum):
    """Why a task failed without an attempt of its own failing."""

    #: A task it depends on, directly or through others, failed.
    UPSTREAM_FAILED = "upstream_failed"
    #: Its workflow was cancelled.
    CANCELLED = "cancelled"


class AttemptStatus(StrEnum):
    """How one run of a task by one runner ended, or that it has not yet."""

    #: Claimed by a runner and not yet reported or expired.
    RUNNING = "running"
    #: The command exited 0.
    COMPLETED = "completed"
    #: Non-zero exit, could not start, runner gave up, heartbeats stopped, or cancelled.
    FAILED = "failed"
    #: Passed its task's ``duration`` while running (counts as failed).
    TIMED_OUT = "timed_out"


class AttemptReason(StrEnum):
    """Why the server, not the runner, ended an attempt."""

    #: The task's ``duration`` passed while the attempt was running.
    DURATION_EXCEEDED = "duration_exceeded"
    #: No heartbeat for the heartbeat timeout: the runner is presumed lost.
    HEARTBEAT_LOST = "heartbeat_lost"
    #: The workflow was cancelled while the attempt ran.
    CANCELLED = "cancelled"


class WorkflowState(StrEnum):
    """A workflow is running until every task is terminal."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


# --- a workflow as submitted -------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task as the workflow file defines it, defaults already applied."""

    name: str
    command: Command
    depends_on: tuple[str, ...] = ()
    #: Seconds after which a running attempt is presumed failed; None: no limit.
    duration: float | None = None
    max_attempts: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    labels: tuple[str, ...] = ()
    priority: int = 0
    #: Seconds to wait before the next attempt after a failure.
    retry_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow: a name and its tasks in file order."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str | None = None


# --- records as stored ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a task by one runner."""

    id: str
    task_id: str
    number: int
    status: AttemptStatus
    runner: str
    started: float
    finished: float | None = None
    exit_code: int | None = None
    #: An ``AttemptReason`` value, or the runner's own message for a failure.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    """A stored task; ``attempts`` is filled only when one task is read."""

    id: str
    workflow_id: str
    name: str
    state: TaskState
    reason: TaskReason | None
    depends_on: tuple[str, ...]
    attempts_used: int
    command: Command
    duration: float | None
    max_attempts: int
    labels: tuple[str, ...]
    priority: int
    created: float
    #: When its latest attempt started / when it became terminal.
    started: float | None = None
    finished: float | None = None
    #: The runner of its latest attempt.
    runner: str | None = None
    attempts: tuple[Attempt, ...] | None = None


@dataclass(frozen=True, slots=True)
class Workflow:
    """A stored workflow; ``tasks`` is filled only when one workflow is read."""

    id: str
    name: str
    description: str | None
    state: WorkflowState
    created: float
    finished: float | None
    #: Tasks per state, every ``TaskState`` value present.
    counts: Mapping[str, int]
    tasks: tuple[Task, ...] | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What a runner needs to run one attempt (SPEC section 5, claim answer)."""

    attempt_id: str
    task_id: str
    workflow_id: str
    task_name: str
    attempt_number: int
    command: Command
    env: Mapping[str, str]
    cwd: str | None
    duration: float | None


@dataclass(frozen=True, slots=True)
class Report:
    """A runner's result for one attempt."""

    status: AttemptStatus  # COMPLETED or FAILED only
    exit_code: int | None = None
    output: str = ""
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ResultAck:
    """The answer to a result: what the attempt and its task became."""

    attempt_status: AttemptStatus
    task_state: TaskState


@dataclass(frozen=True, slots=True)
class Metrics:
    """Counts for ``/metrics``: tasks by state and attempts by status."""

    tasks: Mapping[str, int]
    attempts: Mapping[str, int]
