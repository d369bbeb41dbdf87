"""The glossary's words as types (docs/semantics.md): what a workflow is, what the store keeps.

Two families live here:

* ``WorkflowSpec`` and ``TaskSpec``: a workflow *as submitted*, normalized by
  the loader (defaults applied, durations in seconds, file order kept). The
  loader produces them, the store consumes them; nothing else builds them.
* ``Workflow``, ``Task``, ``Attempt``, ``Claim`` and ``ResultAck``: records
  *as stored*, read back by the store for the API. Times are POSIX seconds
  (floats); the API renders them as ISO 8601 UTC.

States are ``str`` enums whose values are exactly the API's JSON values, so they
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
    """Where a task is in its life (docs/semantics.md)."""

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
    #: An ``on_failure`` task whose dependencies all completed: completed, never run.
    SKIPPED = "skipped"


class RunIf(StrEnum):
    """When a task runs, told by how its dependencies ended (docs/workflow-file.md)."""

    #: Once every dependency completed; a failed one makes it ``upstream_failed``.
    ON_SUCCESS = "on_success"
    #: Once every dependency is terminal and one failed; skipped when all completed.
    ON_FAILURE = "on_failure"
    #: Once every dependency is terminal, however they ended.
    ALWAYS = "always"


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
    #: Free text for people reading the workflow (status, dashboard).
    description: str | None = None
    run_if: RunIf = RunIf.ON_SUCCESS
    #: For an expansion of a matrix task: its values as rendered text, in key order,
    #: and the matrix task's name; None for a task written as itself.
    matrix: Mapping[str, str] | None = None
    matrix_of: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow: a name and its tasks in file order (matrices expanded)."""

    name: str
    tasks: tuple[TaskSpec, ...]
    description: str | None = None
    #: The workflow's params, final values (``--param`` applied), as env text.
    params: Mapping[str, str] = field(default_factory=dict)


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
    #: Why it has not started, when it is ``todo`` (filled by reads, not by a submit).
    waiting_for: WaitingFor | None = None
    description: str | None = None
    run_if: RunIf = RunIf.ON_SUCCESS
    matrix: Mapping[str, str] | None = None
    matrix_of: str | None = None
    #: Attempts since the last retry gave the task a fresh ``max_attempts`` budget.
    attempts_this_round: int = 0


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
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    """What a runner needs to run one attempt (docs/api.md)."""

    attempt_id: str
    task_id: str
    workflow_id: str
    task_name: str
    attempt_number: int
    command: Command
    env: Mapping[str, str]
    cwd: str | None
    duration: float | None


class RunnerState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Runner:
    """A runner as the servers last heard from it (docs/api.md, ``GET /runners``)."""

    name: str
    labels: tuple[str, ...]
    state: RunnerState
    last_seen: float
    #: Its running attempt and that attempt's task, while busy.
    attempt_id: str | None = None
    task_id: str | None = None


class WaitKind(StrEnum):
    DEPENDENCIES = "dependencies"
    RETRY_DELAY = "retry_delay"
    LABELS = "labels"
    RUNNER = "runner"


@dataclass(frozen=True, slots=True)
class WaitingFor:
    """Why a ``todo`` task has not started: the first of ``WaitKind`` that applies."""

    kind: WaitKind
    #: DEPENDENCIES: the first unfinished dependencies' names, and how many more there are.
    tasks: tuple[str, ...] = ()
    more: int = 0
    #: RETRY_DELAY: when the delay ends.
    until: float | None = None
    #: LABELS: the labels no runner seen lately has all of.
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Offer:
    """Which runners could claim something right now, told by labels alone.

    What a waiting claim needs to know before it queries for a task: a runner
    fits when a task with no labels is claimable, or one whose every label the
    runner has. It names no task, so it stays small however much is queued.
    """

    #: A claimable task has no labels: every runner fits.
    plain: bool = False
    #: The label sets of claimable labelled tasks.
    label_sets: tuple[frozenset[str], ...] = ()

    def fits(self, runner_labels: frozenset[str]) -> bool:
        return self.plain or any(needed <= runner_labels for needed in self.label_sets)


@dataclass(frozen=True, slots=True)
class Report:
    """A runner's result for one attempt."""

    status: AttemptStatus  # COMPLETED or FAILED only
    exit_code: int | None = None
    #: What the command printed that the runner had not sent yet (all of it, for a
    #: runner that does not stream), starting at byte ``output_offset`` of its output
    #: (None: after whatever the server already has).
    output: str = ""
    message: str | None = None
    output_offset: int | None = None


@dataclass(frozen=True, slots=True)
class OutputSlice:
    """Part of an attempt's kept output, addressed in bytes of all the command printed."""

    text: str
    #: The first byte still kept (the last 1 MiB is), and the byte after the last one
    #: received. ``text`` starts at the offset asked for, or at ``start`` when that is later.
    start: int
    end: int
    #: The attempt has ended: no more output will come from its runner's command.
    finished: bool


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
