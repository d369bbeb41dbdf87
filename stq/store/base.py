"""The ``Store`` protocol: every state change STQ makes, one method each.

The API layer holds no SQL and no rules; it parses a request, calls one of
these methods and renders the answer. Each method is one transaction, so a
process killed at any point leaves either the whole change or none of it.

Time-based rules (a ``duration`` passing, heartbeats stopping, a
``retry_delay`` elapsing) are applied by the store itself, lazily, inside the
ordinary calls (claims and reads), with the injected clock: no background
thread is needed and any number of processes agree on what they see.

Claim order among claimable tasks whose labels the runner has: higher
``priority`` first, then older workflow, then file order.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from stq.model import (
    Claim,
    Metrics,
    Report,
    ResultAck,
    Task,
    TaskState,
    Workflow,
    WorkflowSpec,
    WorkflowState,
)


class Store(Protocol):
    """What the server can ask of its store. Unknown ids raise ``NotFound``."""

    def submit_workflow(self, spec: WorkflowSpec) -> Workflow:
        """Store a validated workflow with every task ``todo``; return it with its tasks."""
        ...

    def claim_attempt(self, runner: str, labels: Collection[str]) -> Claim | None:
        """Start an attempt of the first claimable task, or return None at once."""
        ...

    def heartbeat(self, attempt_id: str) -> bool:
        """Record that the attempt's runner is alive; True if it must kill the command."""
        ...

    def report_result(self, attempt_id: str, report: Report) -> ResultAck:
        """End an attempt as the runner saw it; idempotent per attempt.

        Raises ``Conflict`` when the attempt's task was cancelled.
        """
        ...

    def report_and_claim(
        self, attempt_id: str, report: Report, runner: str, labels: Collection[str]
    ) -> tuple[ResultAck, Claim | None]:
        """``report_result`` then ``claim_attempt``, in one transaction (one commit per task)."""
        ...

    def cancel_workflow(self, workflow_id: str) -> Workflow:
        """Fail every non-terminal task with reason ``cancelled``."""
        ...

    def retry_workflow(self, workflow_id: str) -> Workflow:
        """Put every failed task back to ``todo`` with a fresh attempt budget."""
        ...

    def delete_workflow(self, workflow_id: str) -> None:
        """Forget a terminal workflow, its tasks, attempts and output; ``Conflict`` if running."""
        ...

    def get_workflow(self, workflow_id: str, with_tasks: bool = True) -> Workflow:
        """One workflow with all its tasks (without their attempts), or its summary only."""
        ...

    def list_workflows(
        self,
        limit: int = 100,
        before: str | None = None,
        state: WorkflowState | None = None,
    ) -> list[Workflow]:
        """Workflows newest first, without tasks; ``before``: last id of the previous page."""
        ...

    def list_tasks(
        self,
        state: TaskState | None = None,
        workflow_id: str | None = None,
    ) -> list[Task]:
        """Tasks in claim order (workflow age, then file order), without attempts."""
        ...

    def get_task(self, task_id: str) -> Task:
        """One task with its attempts, oldest first."""
        ...

    def read_output(self, attempt_id: str) -> str:
        """The captured output of an attempt ('' while running or if none was sent)."""
        ...

    def metrics(self) -> Metrics:
        """Tasks by state and attempts by status across the whole store."""
        ...

    def change_marker(self) -> object:
        """A cheap value that differs after any other connection commits.

        Long-polling claims compare it between tries instead of re-running the
        claim query on a timer.
        """
        ...

    def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers a trivial query."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
