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

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, overload

from stq.model import (
    Claim,
    Metrics,
    Offer,
    OutputSlice,
    Report,
    ResultAck,
    Runner,
    Task,
    TaskState,
    Workflow,
    WorkflowSpec,
    WorkflowState,
)

#: Seconds an idempotency key is remembered after the submit that stored it.
IDEMPOTENCY_WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class Idempotency:
    """A submit's ``Idempotency-Key`` and the sha256 (hex) of its request body.

    The hash is what tells a retry of the same request (answered with the
    first workflow) from a different request that reused the key (refused).
    """

    key: str
    body_sha256: str


class Submission(NamedTuple):
    """What a submit with an ``Idempotency`` did: the workflow, and whether it made it."""

    workflow: Workflow
    #: False: an earlier submit with the key stored ``workflow``; nothing was stored now.
    created: bool


class Store(Protocol):
    """What the server can ask of its store. Unknown ids raise ``NotFound``."""

    @overload
    def submit_workflow(self, spec: WorkflowSpec) -> Workflow: ...

    @overload
    def submit_workflow(self, spec: WorkflowSpec, idempotency: Idempotency) -> Submission: ...

    def submit_workflow(
        self, spec: WorkflowSpec, idempotency: Idempotency | None = None
    ) -> Workflow | Submission:
        """Store a validated workflow with every task ``todo``; return it with its tasks.

        With ``idempotency`` the key is stored in the same transaction as the
        workflow, and the answer says whether this call created it: a repeat
        of the key within ``IDEMPOTENCY_WINDOW`` (by the store's clock) with
        the same body stores nothing and returns the first workflow as it is
        now, with its tasks; with another body it raises ``Conflict``. A
        repeat made while the first is still being stored waits for it. A key
        is forgotten with its workflow (``delete_workflow``) or once older
        than the window.
        """
        ...

    def claim_attempt(self, runner: str, labels: Collection[str]) -> Claim | None:
        """Start an attempt of the first claimable task, or return None at once."""
        ...

    def claim_attempts(self, runners: Sequence[str], labels: Collection[str]) -> list[Claim]:
        """``claim_attempt`` for each of these runners (all with ``labels``) in turn, in one
        transaction, until nothing is left: the claims made, in the runners' order.

        How a server hands work to many waiting runners at once for one commit.
        """
        ...

    def offer(self) -> Offer:
        """Which runners could claim something now, by labels; starts nothing.

        What waiting claims ask once per change of the store, so that only
        runners that fit go on to claim.
        """
        ...

    def see_runners(self, seen: Collection[tuple[str, Collection[str]]]) -> None:
        """Note that these (name, labels) runners were heard from now (one transaction).

        Also forgets runners not heard from for ten minutes.
        """
        ...

    def list_runners(self) -> list[Runner]:
        """The runners heard from in the last ten minutes, or busy, by name."""
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

    def stopping(self, attempt_ids: Collection[str]) -> dict[str, bool]:
        """Of these attempts, those whose runner should hear now: the attempt ended, or
        its command must stop (as ``heartbeat`` answers); each with whether it must stop.

        What held heartbeats ask, for all of a process's at once.
        """
        ...

    def append_output(self, attempt_id: str, text: str, offset: int | None) -> bool:
        """Add what the attempt's command printed, from byte ``offset`` (None: at the end);
        whether its runner must stop the command (as ``heartbeat`` answers).

        Kept whatever the attempt's state. Bytes already stored are skipped; an
        ``offset`` beyond them raises ``Conflict`` (a gap).
        """
        ...

    def output_from(self, attempt_id: str, offset: int = 0) -> OutputSlice:
        """The kept output from absolute byte ``offset`` on, and whether the attempt ended."""
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
