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

Transactions borrow a connection from a pool: the dialect's own (PostgreSQL),
else this process's ``ConnectionPool`` of at most ``POOL_SIZE``, however many
threads the server runs. The one thing kept per thread is the connection a
thread reads the change marker on (SQLite's ``data_version`` counts the
commits of *other* connections, so it must be read on one connection that
never writes): taken on first use and given back when the thread ends, kept
for the next thread (up to ``SPARE_CONNECTIONS``), else closed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import Any, TypeVar, overload

from stq.errors import Conflict, StoreUnavailable
from stq.model import (
    AttemptReason,
    AttemptStatus,
    Claim,
    Metrics,
    Offer,
    OutputSlice,
    Report,
    ResultAck,
    RunIf,
    Runner,
    Task,
    TaskReason,
    TaskState,
    Workflow,
    WorkflowSpec,
    WorkflowState,
)
from stq.store import (
    claim,
    dependents,
    output,
    records,
    reports,
    rules,
    runners,
    submission,
    transitions,
)
from stq.store.base import Idempotency, Submission
from stq.store.dialect import Dialect
from stq.store.pool import ConnectionPool
from stq.store.records import ATTEMPT_COLUMNS, TASK_COLUMNS, WORKFLOW_COLUMNS, parse_id
from stq.store.tx import Tx
from stq.store.waiting import WAIT_COLUMNS, Waits

Clock = Callable[[], float]
T = TypeVar("T")

#: Runs of one write transaction before a repeated deadlock abort is an outage.
MAX_WRITE_TRIES = 5
#: Store-clock seconds for which this process trusts a look that found no attempt due:
#: expiry is applied at most this late, and a busy server saves a query per call.
DUE_CHECK_INTERVAL = 0.05

INSERT_WORKFLOW = (
    "INSERT INTO workflow (name, description, state, created, n_todo, params, has_run_if) "
    "VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id"
)
INSERT_TASK = (
    "INSERT INTO task (workflow_id, position, name, state, command, env, cwd, duration, "
    "max_attempts, labels, priority, retry_delay, depends_on, pending_deps, created, "
    "run_if, description, matrix, matrix_of) "
    "VALUES (?, ?, ?, 'todo', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DEPENDENCY = "INSERT INTO dependency (upstream_id, task_id) VALUES (?, ?)"
SELECT_WORKFLOW = f"SELECT {WORKFLOW_COLUMNS} FROM workflow WHERE id = ?"
#: Tasks as reads answer them: their columns, then what tells why a todo one waits.
READ_COLUMNS = f"{TASK_COLUMNS}, {WAIT_COLUMNS}"
SELECT_WORKFLOW_TASKS = f"SELECT {READ_COLUMNS} FROM task WHERE workflow_id = ? ORDER BY position"
SELECT_TASK = f"SELECT {READ_COLUMNS} FROM task WHERE id = ?"
SELECT_TASK_ATTEMPTS = f"SELECT {ATTEMPT_COLUMNS} FROM attempt WHERE task_id = ? ORDER BY number"
#: A submit of at least this many tasks refreshes the database's statistics at once
#: (``Dialect.refresh_statistics``).
REFRESH_STATISTICS_AFTER = 1_000
#: Marker connections kept, per process, for threads yet to come.
SPARE_CONNECTIONS = 16
#: Connections per process where the dialect has no pool of its own (SQLite).
POOL_SIZE = 16
#: Children first, so foreign keys hold at every step.
DELETE_WORKFLOW = (
    submission.FORGET_WORKFLOW,
    "DELETE FROM workflow_count WHERE workflow_id = ?",
    "DELETE FROM output WHERE attempt_id IN (SELECT a.id FROM attempt a "
    "JOIN task t ON t.id = a.task_id WHERE t.workflow_id = ?)",
    "DELETE FROM attempt WHERE task_id IN (SELECT id FROM task WHERE workflow_id = ?)",
    "DELETE FROM dependency WHERE task_id IN (SELECT id FROM task WHERE workflow_id = ?)",
    "DELETE FROM task WHERE workflow_id = ?",
    "DELETE FROM workflow WHERE id = ?",
)


class SqlStore:
    """The store: the rules of docs/semantics.md over any SQL ``Dialect``."""

    def __init__(self, dialect: Dialect, clock: Clock = time.time, heartbeat_timeout: float = 60):
        self.dialect = dialect
        self.clock = clock
        self.heartbeat_timeout = float(heartbeat_timeout)
        self._local = threading.local()
        self._all: set[Any] = set()
        self._spare: list[tuple[int, Any]] = []  # (pid, connection) given back by ended threads
        self._pool: ConnectionPool | None = None
        self._notes = runners.Notes(every=min(5.0, self.heartbeat_timeout / 3))
        self._lock = threading.Lock()
        self._nothing_due_at = float("-inf")
        #: Where writes run one at a time (SQLite), this process's threads queue for
        #: theirs here, handed on at once, rather than in the database's busy handler,
        #: which sleeps up to 100 ms between tries: with hundreds of runners' results
        #: in flight, those sleeps, not the writes, would set the pace.
        self._writer_turn: AbstractContextManager[Any] = (
            threading.Lock() if dialect.serial_writes else nullcontext()
        )

    # --- connections and transactions ------------------------------------------

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never share one across a fork
            pid, conn = os.getpid(), None
            with self._lock:
                while self._spare and conn is None:
                    owner, spare = self._spare.pop()
                    conn = spare if owner == pid else None
            if conn is None:
                conn = self.dialect.connect()
                with self._lock:
                    self._all.add(conn)
            self._local.conn, self._local.commits, self._local.pid = conn, 0, pid
            self._local.give_back = _WhenThreadEnds(lambda: self._give_back(conn, pid))
        return conn

    def _give_back(self, conn: Any, pid: int) -> None:
        """A thread ended: keep its connection for the next thread, or close it."""
        if pid != os.getpid():
            return  # another process's: closing it here could drop that process's locks
        with self._lock:
            if conn in self._all and len(self._spare) < SPARE_CONNECTIONS:
                self._spare.append((pid, conn))
                return
            self._all.discard(conn)
        try:
            conn.close()
        except Exception:  # a broken connection may complain while closing; it is gone either way
            pass

    @contextmanager
    def _borrow(self) -> Iterator[Any]:
        """A connection for one transaction: the dialect's pool's, else this process's."""
        pooled = self.dialect.borrow()
        if pooled is None:
            pooled = self._own_pool().borrow()
        with pooled as conn:
            yield conn

    def _own_pool(self) -> ConnectionPool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():  # never share one across a fork
            with self._lock:
                if self._pool is None or self._pool.pid != os.getpid():
                    self._pool = ConnectionPool(self.dialect.connect, POOL_SIZE)
                pool = self._pool
        return pool

    @contextmanager
    def _marker_conn(self) -> Iterator[Any]:
        yield self._conn()

    @contextmanager
    def _tx(self, begin: str, writes: bool = False) -> Iterator[Tx]:
        try:
            with self._borrow() as conn:
                conn.execute(begin)  # PostgreSQL: BEGIN and its lock in one round trip
                try:
                    tx = Tx(conn, self.dialect, self.clock())
                    yield tx
                    tx.checked = self.dialect.commit(conn, tx.tail, tx.after)
                except BaseException:
                    self._rollback(conn)
                    raise
                if writes:  # committed: nothing from here on may roll it back
                    self.dialect.after_write(conn)
        except self.dialect.retry_errors:
            raise  # the caller runs the transaction again
        except self.dialect.unavailable_errors as ex:
            raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex

    def _rollback(self, conn: Any) -> None:
        """Roll back, unless the database already did (some errors end the transaction)."""
        try:
            conn.execute("ROLLBACK")
        except self.dialect.unavailable_errors:
            pass

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
                with self._writer_turn, self._tx(begin, writes=True) as tx:
                    if self._due_unknown(tx.now):
                        transitions.expire_due(tx, self.heartbeat_timeout)
                        self._nothing_due_at = tx.now
                    result = work(tx)
                    transitions.apply_counts(tx)
                    if tx.wake and self.dialect.wake_statement:
                        tx.defer(self.dialect.wake_statement)
                break
            except self.dialect.retry_errors as ex:
                if tries == MAX_WRITE_TRIES:
                    raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex
        self._local.commits = getattr(self._local, "commits", 0) + 1
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
        try:
            with self._borrow() as conn:
                row = Tx(conn, self.dialect, 0).one(transitions.STATE_AND_COUNTS, (workflow_id,))
        except self.dialect.unavailable_errors as ex:
            raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex
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
            try:
                with self._borrow() as conn:
                    due = transitions.any_due(Tx(conn, self.dialect, now), self.heartbeat_timeout)
            except self.dialect.unavailable_errors as ex:
                raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex
            if due:
                self._nothing_due_at = float("-inf")  # so the write looks
                self._write(lambda tx: None)
            else:
                self._nothing_due_at = now
        with self._tx(self.dialect.begin_read) as tx:
            yield tx

    # --- writes -------------------------------------------------------------------

    @overload
    def submit_workflow(self, spec: WorkflowSpec) -> Workflow: ...

    @overload
    def submit_workflow(self, spec: WorkflowSpec, idempotency: Idempotency) -> Submission: ...

    def submit_workflow(
        self, spec: WorkflowSpec, idempotency: Idempotency | None = None
    ) -> Workflow | Submission:
        depends = reports.check_spec(spec)
        has_run_if = any(t.run_if != RunIf.ON_SUCCESS for t in spec.tasks)

        def insert(tx: Tx) -> Workflow:
            wid = tx.one(
                INSERT_WORKFLOW,
                (
                    spec.name,
                    spec.description,
                    tx.now,
                    len(spec.tasks),
                    records.dump_mapping(spec.params),
                    int(has_run_if),
                ),
            )
            wid = int(wid[0])
            tx.many(INSERT_TASK, _task_rows(wid, spec, depends, tx.now))
            ids = dict(iter(tx.run("SELECT name, id FROM task WHERE workflow_id = ?", (wid,))))
            edges = ((ids[d], ids[t.name]) for i, t in enumerate(spec.tasks) for d in depends[i])
            tx.many(INSERT_DEPENDENCY, edges)
            skipped = set(dependents.skip_waiting(tx, wid)) if has_run_if else set()
            transitions.apply_counts(tx, alone=True)  # exact: nobody else sees the workflow yet
            transitions.settle(tx, wid)
            tx.wake = True
            ref = records.make_id("w", wid)
            tasks = tuple(
                records.submitted_task(ids[t.name], ref, t, depends[i], tx.now)
                for i, t in enumerate(spec.tasks)
            )
            if skipped:
                refs = {records.make_id("t", i) for i in skipped}
                tasks = tuple(_skipped(t, tx.now) if t.id in refs else t for t in tasks)
            return records.workflow_from_row(tx.one(SELECT_WORKFLOW, (wid,)), tasks)

        if idempotency is None:
            workflow = self._write(insert)
            self._after_submit(spec)
            return workflow
        once = idempotency

        def insert_once(tx: Tx) -> Submission:
            """The key first: whoever takes it creates; a repeat reads the first workflow."""
            first = submission.take(tx, once)
            if first is not None:
                workflow = _load_workflow(tx, first, self._waits(tx))
                return Submission(workflow, created=False)
            workflow = insert(tx)
            submission.bind(tx, once, parse_id("w", workflow.id))
            return Submission(workflow, created=True)

        submitted = self._write(insert_once)
        if submitted.created:
            self._after_submit(spec)
        return submitted

    def _after_submit(self, spec: WorkflowSpec) -> None:
        """After a big submit, refresh the planner's statistics; a failure here fails nothing."""
        statement = self.dialect.refresh_statistics
        if statement is None or len(spec.tasks) < REFRESH_STATISTICS_AFTER:
            return
        try:
            with self._borrow() as conn:
                conn.execute(statement)
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

    def list_runners(self) -> list[Runner]:
        with self._read() as tx:
            return runners.listing(tx, self.heartbeat_timeout)

    def _waits(self, tx: Tx) -> Waits:
        return Waits(tx, self.heartbeat_timeout)

    def offer(self) -> Offer:
        with self._read() as tx:
            return claim.offer(tx)

    def heartbeat(self, attempt_id: str) -> bool:
        aid = parse_id("a", attempt_id)

        def beat(tx: Tx) -> bool:
            row = tx.one(ATTEMPT_CANCEL_FACTS, (aid,))
            if row is None:
                raise records.not_found("a", aid)
            status, reason, task_state, runner = row
            if status == AttemptStatus.RUNNING:
                tx.run(
                    "UPDATE attempt SET heartbeat = ? WHERE id = ? AND status = 'running'",
                    (tx.now, aid),
                )
                runners.beat(tx, runner)
            return _cancel_asked(reason, task_state)

        return self._write(beat)

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

    def cancel_workflow(self, workflow_id: str) -> Workflow:
        return self._change_workflow(workflow_id, transitions.cancel)

    def retry_workflow(self, workflow_id: str) -> Workflow:
        return self._change_workflow(workflow_id, transitions.retry)

    def _change_workflow(self, workflow_id: str, change: Callable[[Tx, int], None]) -> Workflow:
        """Cancel or retry: every task of the workflow at once, alone (``exclusive``)."""
        wid = parse_id("w", workflow_id)

        def apply(tx: Tx) -> Workflow:
            _require_workflow(tx, wid)
            change(tx, wid)
            transitions.apply_counts(tx, alone=True)  # settled now: nothing runs beside it
            return _load_workflow(tx, wid, self._waits(tx))

        return self._write(apply, exclusive=True)

    def delete_workflow(self, workflow_id: str) -> None:
        wid = parse_id("w", workflow_id)

        def delete(tx: Tx) -> None:
            if _require_workflow(tx, wid) == WorkflowState.RUNNING:
                raise Conflict(f"Workflow {workflow_id} is running: cancel it first")
            for statement in DELETE_WORKFLOW:
                tx.run(statement, (wid,))

        self._write(delete, exclusive=True)

    # --- reads --------------------------------------------------------------------

    def get_workflow(self, workflow_id: str, with_tasks: bool = True) -> Workflow:
        wid = parse_id("w", workflow_id)

        def read() -> list[Workflow]:
            with self._read() as tx:
                return [_load_workflow(tx, wid, self._waits(tx) if with_tasks else None)]

        return self._settled(read(), read)[0]

    def list_workflows(
        self, limit: int = 100, before: str | None = None, state: WorkflowState | None = None
    ) -> list[Workflow]:
        where, params = ["1 = 1"], []
        if before is not None:
            where.append("id < ?")
            params.append(parse_id("w", before))
        if state is not None:
            where.append("state = ?")
            params.append(WorkflowState(state).value)
        sql = (
            f"SELECT {WORKFLOW_COLUMNS} FROM workflow WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?"
        )
        if state is not None:
            self._settle_running()

        def read() -> list[Workflow]:
            with self._read() as tx:
                rows = tx.all(sql, (*params, max(0, limit)))
                return [records.workflow_from_row(r) for r in rows]

        return self._settled(read(), read)

    def list_tasks(
        self, state: TaskState | None = None, workflow_id: str | None = None
    ) -> list[Task]:
        where, params = ["1 = 1"], []
        if state is not None:
            where.append("state = ?")
            params.append(TaskState(state).value)
        if workflow_id is not None:
            where.append("workflow_id = ?")
            params.append(parse_id("w", workflow_id))
        sql = (
            f"SELECT {READ_COLUMNS} FROM task WHERE {' AND '.join(where)} "
            "ORDER BY workflow_id, position"
        )
        with self._read() as tx:
            return list(self._waits(tx).tasks(tx.all(sql, params)))

    def get_task(self, task_id: str) -> Task:
        tid = parse_id("t", task_id)
        with self._read() as tx:
            row = tx.one(SELECT_TASK, (tid,))
            if row is None:
                raise records.not_found("t", tid)
            attempts = tuple(
                records.attempt_from_row(a) for a in tx.all(SELECT_TASK_ATTEMPTS, (tid,))
            )
            return next(iter(self._waits(tx).tasks([row], attempts)))

    def stopping(self, attempt_ids: Collection[str]) -> dict[str, bool]:
        ids = [parse_id("a", a) for a in attempt_ids]
        found: dict[str, bool] = {}
        with self._read() as tx:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = tx.all(f"{ATTEMPTS_CANCEL_FACTS} ({marks})", chunk)
                for aid, status, reason, task_state in rows:
                    # An attempt its own result completed has no command left to stop.
                    done = status == AttemptStatus.COMPLETED.value
                    cancel = not done and _cancel_asked(reason, task_state)
                    if cancel or status != AttemptStatus.RUNNING.value:
                        found[records.make_id("a", aid)] = cancel
        return found

    def append_output(self, attempt_id: str, text: str, offset: int | None) -> bool:
        aid = parse_id("a", attempt_id)

        def add(tx: Tx) -> bool:
            row = tx.one(ATTEMPT_CANCEL_FACTS, (aid,))
            if row is None:
                raise records.not_found("a", aid)
            output.append(tx, aid, text, offset)
            return _cancel_asked(row[1], row[2])

        return self._write(add)

    def output_from(self, attempt_id: str, offset: int = 0) -> OutputSlice:
        aid = parse_id("a", attempt_id)
        with self._read() as tx:
            row = tx.one("SELECT status FROM attempt WHERE id = ?", (aid,))
            if row is None:
                raise records.not_found("a", aid)
            kept = output.read_from(output.kept(tx, aid), offset)
            finished = row[0] != AttemptStatus.RUNNING.value
            return OutputSlice(kept.text, kept.start, kept.end, finished)

    def read_output(self, attempt_id: str) -> str:
        aid = parse_id("a", attempt_id)
        with self._read() as tx:
            row = tx.one(
                "SELECT o.text FROM attempt a LEFT JOIN output o ON o.attempt_id = a.id "
                "WHERE a.id = ?",
                (aid,),
            )
            if row is None:
                raise records.not_found("a", aid)
            return row[0] or ""

    def metrics(self) -> Metrics:
        with self._read() as tx:
            sums = tx.one(
                "SELECT sum(n_todo), sum(n_in_process), sum(n_completed), sum(n_failed) "
                "FROM (SELECT n_todo, n_in_process, n_completed, n_failed FROM workflow "
                "UNION ALL SELECT n_todo, n_in_process, n_completed, n_failed "
                "FROM workflow_count) AS counts"
            )
            found = dict(tx.all("SELECT status, count(*) FROM attempt GROUP BY status"))
        attempts = {s.value: int(found.get(s.value, 0)) for s in AttemptStatus}
        return Metrics(tasks=records.counts_from(sums), attempts=attempts)

    def change_marker(self) -> object:
        try:
            marker = self.dialect.change_marker(self._marker_conn)
            return (marker, getattr(self._local, "commits", 0))
        except self.dialect.unavailable_errors as ex:
            raise StoreUnavailable(f"The {self.dialect.name} store failed: {ex}") from ex

    def check(self) -> None:
        with self._tx(self.dialect.begin_read) as tx:
            tx.one("SELECT 1")

    def close(self) -> None:
        with self._lock:
            conns, self._all, self._spare = self._all, set(), []
            pool, self._pool = self._pool, None
        for conn in conns:
            conn.close()
        if pool is not None:
            pool.close()
        self.dialect.close()
        self._local = threading.local()


class _WhenThreadEnds:
    """Kept in a thread's ``threading.local``: runs ``action`` when the thread ends."""

    __slots__ = ("action",)

    def __init__(self, action: Callable[[], None]):
        self.action = action

    def __del__(self) -> None:
        try:
            self.action()
        except Exception:  # at interpreter exit the store may be half torn down: nothing to keep
            pass


def _task_rows(wid: int, spec: WorkflowSpec, depends: list[tuple[str, ...]], now: float):
    """INSERT_TASK's parameters for each task, in file order.

    Tasks without an ``env`` of their own share the workflow's mapping (see
    the loader), so each distinct one is encoded once, not once per task.
    """
    envs: dict[int, str] = {}
    for position, task in enumerate(spec.tasks):
        env = envs.get(id(task.env))
        if env is None:
            env = envs[id(task.env)] = _dump_env(task.env)
        needs = depends[position]
        yield (
            wid,
            position,
            task.name,
            records.dump_command(task.command),
            env,
            task.cwd,
            None if task.duration is None else float(task.duration),
            int(task.max_attempts),
            records.dump_labels(task.labels) if task.labels else None,
            int(task.priority),
            float(task.retry_delay or 0),
            records.dump_strings(needs),
            len(needs),
            now,
            _RUN_IF_TEXT[task.run_if],
            task.description,
            records.dump_mapping(task.matrix),
            task.matrix_of,
        )


#: ``run_if`` as stored, looked up rather than converted: 100,000 tasks pass through here.
_RUN_IF_TEXT = {r: r.value for r in RunIf}


def _skipped(task: Task, now: float) -> Task:
    """A task the submit itself skipped (an ``on_failure`` task with nothing to wait for)."""
    return replace(task, state=TaskState.COMPLETED, reason=TaskReason.SKIPPED, finished=now)


def _dump_env(env: Any) -> str:
    return json.dumps({str(k): str(v) for k, v in dict(env).items()})


def _require_workflow(tx: Tx, wid: int) -> WorkflowState:
    row = tx.one("SELECT state FROM workflow WHERE id = ?", (wid,))
    if row is None:
        raise records.not_found("w", wid)
    return WorkflowState(row[0])


#: What tells whether an attempt's runner must stop its command, and who that runner is.
ATTEMPT_CANCEL_FACTS = (
    "SELECT a.status, a.reason, t.state, a.runner FROM attempt a "
    "JOIN task t ON t.id = a.task_id WHERE a.id = ?"
)


#: The same facts for many attempts (``... IN (ids)`` follows).
ATTEMPTS_CANCEL_FACTS = (
    "SELECT a.id, a.status, a.reason, t.state FROM attempt a "
    "JOIN task t ON t.id = a.task_id WHERE a.id IN"
)


def _cancel_asked(attempt_reason: str | None, task_state: str) -> bool:
    """Whether the attempt's command must stop: its task ended (another attempt finished
    it, or a cancel failed it), or the attempt itself was cancelled. A cancelled attempt
    stays cancelled after a retry puts its task back to todo: its command must still
    stop, or it would run beside the next attempt."""
    return TaskState(task_state).terminal or attempt_reason == AttemptReason.CANCELLED


def _load_workflow(tx: Tx, wid: int, waits: Waits | None) -> Workflow:
    """The workflow, with its tasks (each todo one with its wait) when ``waits`` is given."""
    row = tx.one(SELECT_WORKFLOW, (wid,))
    if row is None:
        raise records.not_found("w", wid)
    tasks = None
    if waits is not None:
        rows = tx.run(SELECT_WORKFLOW_TASKS, (wid,))  # streamed: no second list of 100k rows
        tasks = tuple(waits.tasks(rows))
    return records.workflow_from_row(row, tasks)
