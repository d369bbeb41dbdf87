"""``SqlStore``: the one implementation of the ``Store`` protocol, over a ``Dialect``.

Every public method is one transaction. Writes start with the dialect's
``begin_write`` (SQLite: ``BEGIN IMMEDIATE``, one writer at a time;
PostgreSQL: row locks, so writes run side by side and the rare bulk ones take
``begin_exclusive``); reads run in one read transaction so a workflow and its
tasks come from the same snapshot.
Time-based rules are applied lazily with the injected clock: a call first
asks two small indexes whether any running attempt is past its deadline or
heartbeat timeout (at most every ``DUE_CHECK_INTERVAL`` per process), and
opens a write transaction for it only when one is.

What each transaction does lives beside this class: ``writes`` and ``reads``
(and the rules modules they call); the connections it runs on, ``connections``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar, overload

from stq.errors import StoreUnavailable
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
from stq.store import claim, reads, reports, rules, runners, transitions, writes
from stq.store.base import Idempotency, Submission
from stq.store.connections import Connections
from stq.store.dialect import Dialect
from stq.store.records import parse_id
from stq.store.statements import named
from stq.store.tx import Tx
from stq.store.waiting import Waits

Clock = Callable[[], float]
T = TypeVar("T")

#: Runs of one write transaction before a repeated deadlock abort is an outage.
MAX_WRITE_TRIES = 5
#: Store-clock seconds for which this process trusts a look that found no attempt due:
#: expiry is applied at most this late, and a busy server saves a query per call.
DUE_CHECK_INTERVAL = 0.05
#: A submit of at least this many tasks refreshes the database's statistics at once
#: (``Dialect.refresh_statistics``).
REFRESH_STATISTICS_AFTER = 1_000
CHECK = named("check")


class SqlStore:
    """The store: the rules of docs/semantics.md over any SQL ``Dialect``."""

    def __init__(self, dialect: Dialect, clock: Clock = time.time, heartbeat_timeout: float = 60):
        self.dialect = dialect
        self.clock = clock
        self.heartbeat_timeout = float(heartbeat_timeout)
        self._db = Connections(dialect, lambda: self.clock())  # the clock as it is then
        self._notes = runners.Notes(every=min(5.0, self.heartbeat_timeout / 3))
        self._nothing_due_at = float("-inf")
        #: Where writes run one at a time (SQLite), this process's threads queue for
        #: theirs here, handed on at once, rather than in the database's busy handler,
        #: which sleeps up to 100 ms between tries: with hundreds of runners' results
        #: in flight, those sleeps, not the writes, would set the pace.
        self._writer_turn: AbstractContextManager[Any] = (
            threading.Lock() if dialect.serial_writes else nullcontext()
        )

    # --- transactions ---------------------------------------------------------------

    def _write(self, work: Callable[[Tx], T], *, exclusive: bool = False) -> T:
        """Run ``work`` in one write transaction, again if the database broke a deadlock.

        Around it: what is due expires first (the lazy time rules), the
        workflow counters move last (so a counter row is locked only until the
        commit), a wake-up goes out if a task may have become claimable, and
        a workflow in which tasks ended is settled if the counts read just
        after the commit say it is finished (``transitions.apply_counts``).
        """
        begin = self.dialect.begin_exclusive if exclusive else self.dialect.begin_write
        for tries in range(1, MAX_WRITE_TRIES + 1):
            try:
                with self._writer_turn, self._db.transaction(begin, writes=True) as tx:
                    if self._due_unknown(tx.now):
                        transitions.expire_due(tx, self.heartbeat_timeout)
                        self._nothing_due_at = tx.now
                    result = work(tx)
                    transitions.apply_counts(tx)
                    if tx.wake and self.dialect.wake is not None:
                        tx.defer(self.dialect.wake)
                break
            except self.dialect.retry_errors as ex:
                if tries == MAX_WRITE_TRIES:
                    raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex
        self._db.note_commit()
        for row in tx.checked:  # a workflow where tasks ended, read just after the commit
            self._settle_if_stale(row)
        return result

    def _due_unknown(self, now: float) -> bool:
        """Whether to look for expired attempts: not looked in the last ``DUE_CHECK_INTERVAL``."""
        return not 0 <= now - self._nothing_due_at < DUE_CHECK_INTERVAL

    def _settle(self, workflow_id: int) -> None:
        """After a commit that ended tasks, settle the workflow if its counts say so.

        One autocommit read first, so the common case (tasks still to run)
        costs one query and no lock. This also repairs a workflow whose last
        check was lost with its process (reads call it for any they find).
        """
        with self._db.answering(), self._db.borrow() as conn:
            row = Tx(conn, self.dialect, 0).one(transitions.STATE_AND_COUNTS, (workflow_id,))
        self._settle_if_stale(row)

    def _settle_if_stale(self, row: Any) -> None:
        """Settle the workflow of a ``STATE_AND_COUNTS`` row if its counts contradict its state."""
        if row is not None and transitions.implied_state(row) != row[0]:
            self._write(lambda tx: transitions.settle(tx, row[-1]))

    def _settled(
        self, workflows: list[Workflow], read: Callable[[], list[Workflow]]
    ) -> list[Workflow]:
        """``workflows``, read again after settling any whose state its counts contradict."""
        stale = [w for w in workflows if rules.workflow_state(w.counts) != w.state]
        for workflow in stale:
            self._settle(parse_id("w", workflow.id))
        return read() if stale else workflows

    def _settle_running(self) -> None:
        """Settle every running workflow whose counts say it is finished.

        Before a list filtered by state: a workflow whose settling died with
        its server would otherwise be missing from the ``completed`` list.
        Only where writes run side by side; SQLite settles inside each write.
        """
        if self.dialect.serial_writes:
            return
        with self._read() as tx:
            rows = tx.all(transitions.RUNNING_STATES_AND_COUNTS)
        for row in rows:
            self._settle_if_stale(row)

    @contextmanager
    def _read(self) -> Iterator[Tx]:
        """A snapshot read, after applying any expiry that is due (in its own write)."""
        now = self.clock()
        if self._due_unknown(now):
            with self._db.answering(), self._db.borrow() as conn:
                due = transitions.any_due(Tx(conn, self.dialect, now), self.heartbeat_timeout)
            if due:
                self._nothing_due_at = float("-inf")  # so the write looks
                self._write(lambda tx: None)
            else:
                self._nothing_due_at = now
        with self._db.transaction(self.dialect.begin_read) as tx:
            yield tx

    def _waits(self, tx: Tx) -> Waits:
        return Waits(tx, self.heartbeat_timeout)

    # --- writes -------------------------------------------------------------------

    @overload
    def submit_workflow(self, spec: WorkflowSpec) -> Workflow: ...

    @overload
    def submit_workflow(self, spec: WorkflowSpec, idempotency: Idempotency) -> Submission: ...

    def submit_workflow(
        self, spec: WorkflowSpec, idempotency: Idempotency | None = None
    ) -> Workflow | Submission:
        depends = reports.check_spec(spec)
        if idempotency is None:
            workflow = self._write(lambda tx: writes.submit(tx, spec, depends))
            self._after_submit(spec)
            return workflow
        once = idempotency
        submitted = self._write(
            lambda tx: writes.submit_once(tx, spec, depends, once, self._waits(tx))
        )
        if submitted.created:
            self._after_submit(spec)
        return submitted

    def _after_submit(self, spec: WorkflowSpec) -> None:
        """After a big submit, refresh the planner's statistics; a failure here fails nothing."""
        statement = self.dialect.refresh_statistics
        if statement is None or len(spec.tasks) < REFRESH_STATISTICS_AFTER:
            return
        try:
            with self._db.borrow() as conn:
                self.dialect.execute(conn, statement)
        except Exception:  # housekeeping: autovacuum will do it later anyway
            pass

    def claim_attempt(self, runner: str, labels: Collection[str]) -> Claim | None:
        claims = self.claim_attempts([runner], labels)
        return claims[0] if claims else None

    def claim_attempts(self, runners: Sequence[str], labels: Collection[str]) -> list[Claim]:
        if not runners:
            return []
        if self.dialect.serial_writes:
            with self._read() as tx:  # no write lock while nothing is claimable
                if claim.find_candidate(tx, labels, lock=False) is None:
                    return []

        def note(runner: str) -> bool:
            return self._notes.due(runner, labels)

        return self._write(lambda tx: claim.take_many(tx, runners, labels, note))

    def see_runners(self, seen: Collection[tuple[str, Collection[str]]]) -> None:
        def note(tx: Tx) -> None:
            runners.seen(tx, seen)
            runners.forget_old(tx)

        if seen:
            self._write(note)

    def heartbeat(self, attempt_id: str) -> bool:
        aid = parse_id("a", attempt_id)
        return self._write(lambda tx: writes.heartbeat(tx, aid))

    def report_result(self, attempt_id: str, report: Report) -> ResultAck:
        aid = parse_id("a", attempt_id)
        return self._write(lambda tx: reports.report(tx, aid, report)).answer()

    def report_and_claim(
        self, attempt_id: str, report: Report, runner: str, labels: Collection[str]
    ) -> tuple[ResultAck, Claim | None]:
        aid = parse_id("a", attempt_id)

        def report_then_claim(tx: Tx) -> tuple[reports.Outcome, Claim | None]:
            outcome = reports.report(tx, aid, report)
            if outcome.refused is not None:
                return outcome, None  # a refused result claims nothing
            again = claim.claimed_after(tx, aid, runner) if outcome.repeat else None
            note = self._notes.due(runner, labels)
            return outcome, again or claim.take(tx, runner, labels, after=aid, note=note)

        outcome, claimed = self._write(report_then_claim)
        return outcome.answer(), claimed

    def append_output(self, attempt_id: str, text: str, offset: int | None) -> bool:
        aid = parse_id("a", attempt_id)
        return self._write(lambda tx: writes.append_output(tx, aid, text, offset))

    def cancel_workflow(self, workflow_id: str) -> Workflow:
        return self._change_workflow(workflow_id, transitions.cancel)

    def retry_workflow(self, workflow_id: str) -> Workflow:
        return self._change_workflow(workflow_id, transitions.retry)

    def _change_workflow(self, workflow_id: str, change: Callable[[Tx, int], None]) -> Workflow:
        """Cancel or retry: every task of the workflow at once, alone (``exclusive``)."""
        wid = parse_id("w", workflow_id)

        def apply(tx: Tx) -> Workflow:
            writes.require_workflow(tx, wid)
            change(tx, wid)
            transitions.apply_counts(tx, alone=True)  # settled now: nothing runs beside it
            return reads.workflow(tx, wid, self._waits(tx))

        return self._write(apply, exclusive=True)

    def delete_workflow(self, workflow_id: str) -> None:
        wid = parse_id("w", workflow_id)
        self._write(lambda tx: writes.delete(tx, wid), exclusive=True)

    # --- reads --------------------------------------------------------------------

    def list_runners(self) -> list[Runner]:
        with self._read() as tx:
            return runners.listing(tx, self.heartbeat_timeout)

    def offer(self) -> Offer:
        with self._read() as tx:
            return claim.offer(tx)

    def get_workflow(self, workflow_id: str, with_tasks: bool = True) -> Workflow:
        wid = parse_id("w", workflow_id)

        def read() -> list[Workflow]:
            with self._read() as tx:
                return [reads.workflow(tx, wid, self._waits(tx) if with_tasks else None)]

        return self._settled(read(), read)[0]

    def list_workflows(
        self, limit: int = 100, before: str | None = None, state: WorkflowState | None = None
    ) -> list[Workflow]:
        older = None if before is None else parse_id("w", before)
        state = None if state is None else WorkflowState(state)
        if state is not None:
            self._settle_running()

        def read() -> list[Workflow]:
            with self._read() as tx:
                return reads.workflows(tx, limit, older, state)

        return self._settled(read(), read)

    def list_tasks(
        self, state: TaskState | None = None, workflow_id: str | None = None
    ) -> list[Task]:
        state = None if state is None else TaskState(state)
        wid = None if workflow_id is None else parse_id("w", workflow_id)
        with self._read() as tx:
            return reads.tasks(tx, self._waits(tx), state, wid)

    def get_task(self, task_id: str) -> Task:
        tid = parse_id("t", task_id)
        with self._read() as tx:
            return reads.task(tx, tid, self._waits(tx))

    def stopping(self, attempt_ids: Collection[str]) -> dict[str, bool]:
        ids = [parse_id("a", a) for a in attempt_ids]
        with self._read() as tx:
            return reads.stopping(tx, ids)

    def output_from(self, attempt_id: str, offset: int = 0) -> OutputSlice:
        aid = parse_id("a", attempt_id)
        with self._read() as tx:
            return reads.output_from(tx, aid, offset)

    def read_output(self, attempt_id: str) -> str:
        aid = parse_id("a", attempt_id)
        with self._read() as tx:
            return reads.read_output(tx, aid)

    def metrics(self) -> Metrics:
        with self._read() as tx:
            return reads.metrics(tx)

    def change_marker(self) -> object:
        with self._db.answering():
            return (self.dialect.change_marker(self._db.marker), self._db.commits())

    def check(self) -> None:
        with self._db.transaction(self.dialect.begin_read) as tx:
            tx.one(CHECK)

    def close(self) -> None:
        self._db.close()
