"""The Store contract (docs/semantics.md) with a hand-driven clock, on both stores.

The ``store`` fixture is parametrised by backend: a real SQLite file, and a
fresh database on the real PostgreSQL (tests/pg.py), so every rule below runs
unchanged against both dialects.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from stq.errors import Conflict, NotFound, StoreUnavailable, WorkflowInvalid
from stq.model import (
    AttemptStatus,
    Report,
    TaskSpec,
    TaskState,
    WaitingFor,
    WaitKind,
    WorkflowSpec,
    WorkflowState,
)
from stq.store import open_store, reports, transitions
from stq.store.base import IDEMPOTENCY_WINDOW, Idempotency
from stq.store.dialect import schema_statements
from stq.store.records import parse_id
from stq.store.sql import SqlStore
from stq.store.sqlite import SqliteDialect
from tests.helpers import wait_until

T0 = 1_800_000_000.0
HB = 60.0


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _open_sqlite(tmp_path: Path, clock: FakeClock) -> SqlStore:
    return open_store(str(tmp_path / "stq.db"), clock=clock, heartbeat_timeout=HB)  # type: ignore[return-value]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "stq.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[SqlStore]:
    opened = open_store(store_url, clock=clock, heartbeat_timeout=HB)
    yield opened  # type: ignore[misc]
    opened.close()  # type: ignore[attr-defined]


def wf(*tasks: TaskSpec, name: str = "wf") -> WorkflowSpec:
    return WorkflowSpec(name=name, tasks=tuple(tasks))


def t(name: str, *deps: str, **fields: object) -> TaskSpec:
    return TaskSpec(name=name, command=f"echo {name}", depends_on=deps, **fields)  # type: ignore[arg-type]


OK = Report(AttemptStatus.COMPLETED, exit_code=0, output="ok")
BAD = Report(AttemptStatus.FAILED, exit_code=3, output="bad")


def run(store: SqlStore, report: Report = OK, labels: tuple[str, ...] = ()) -> str:
    """Claim the next task, report ``report`` for it; the task's name."""
    claim = store.claim_attempt("r1", labels)
    assert claim is not None
    store.report_result(claim.attempt_id, report)
    return claim.task_name


def states(store: SqlStore, workflow_id: str) -> dict[str, tuple[str, str | None]]:
    return {
        task.name: (task.state.value, task.reason and task.reason.value)
        for task in store.get_workflow(workflow_id).tasks or ()
    }


# --- submit, ids, reads -----------------------------------------------------------


def test_submit_stores_every_field(store: SqlStore, clock: FakeClock) -> None:
    spec = wf(
        TaskSpec(
            "a",
            ("python3", "-c", "x"),
            duration=5,
            max_attempts=3,
            env={"K": "v"},
            cwd="work",
            labels=("gpu",),
            priority=4,
            retry_delay=2,
        ),
        t("b", "a"),
    )
    got = store.submit_workflow(spec)
    assert got.id.startswith("w") and got.state == WorkflowState.RUNNING
    assert got.created == T0 and got.finished is None
    assert got.counts == {"todo": 2, "in_process": 0, "completed": 0, "failed": 0}
    a, b = got.tasks or ()
    assert a.command == ("python3", "-c", "x") and a.duration == 5 and a.max_attempts == 3
    assert a.labels == ("gpu",) and a.priority == 4 and a.created == T0
    assert b.depends_on == ("a",) and b.workflow_id == got.id and b.attempts_used == 0
    assert store.get_task(a.id).attempts == ()
    # the submit's answer is built from the spec, not read back: it must equal a read
    # (which adds why each task waits: a right after the submit, b for a)
    read = store.get_workflow(got.id)
    waits = [t.waiting_for for t in read.tasks or ()]
    assert waits == [
        WaitingFor(WaitKind.LABELS, labels=("gpu",)),
        WaitingFor(WaitKind.DEPENDENCIES, tasks=("a",)),
    ]
    assert got == replace(
        read, tasks=tuple(replace(t, waiting_for=None) for t in read.tasks or ())
    )


def test_unknown_and_malformed_ids_are_not_found(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"))).id
    task_id = store.list_tasks()[0].id
    for bad in ("w999", "t1x", "", "x1", "w0", "w-1", "1", task_id.replace("t", "w") + "9"):
        with pytest.raises(NotFound):
            store.get_workflow(bad)
    with pytest.raises(NotFound):
        store.get_task(wid)  # a workflow id is not a task id
    for call in (store.heartbeat, store.read_output, store.cancel_workflow, store.delete_workflow):
        with pytest.raises(NotFound):
            call("a12345")  # type: ignore[operator]
    with pytest.raises(NotFound):
        store.report_result("a77", OK)


def test_broken_graph_is_rejected_and_nothing_stored(store: SqlStore) -> None:
    with pytest.raises(WorkflowInvalid):
        store.submit_workflow(wf(t("a", "nope")))
    with pytest.raises(WorkflowInvalid):
        store.submit_workflow(wf(t("a"), t("a")))
    assert store.list_workflows() == []


def test_ids_are_never_reused_after_delete(store: SqlStore) -> None:
    first = store.submit_workflow(wf(t("a")))
    run(store)
    store.delete_workflow(first.id)
    second = store.submit_workflow(wf(t("a")))
    assert second.id != first.id
    assert second.tasks[0].id != first.tasks[0].id  # type: ignore[index]


# --- claim --------------------------------------------------------------------------


def test_claim_order_priority_then_workflow_age_then_file_order(store: SqlStore) -> None:
    store.submit_workflow(wf(t("old1"), t("old2"), t("oldhigh", priority=5), name="old"))
    store.submit_workflow(wf(t("new1"), t("newhigh", priority=5), t("newtop", priority=9)))
    order = [run(store) for _ in range(6)]
    assert order == ["newtop", "oldhigh", "newhigh", "old1", "old2", "new1"]
    assert store.claim_attempt("r1", []) is None


def test_dependencies_gate_claims(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b", "a"), t("c", "a", "b"))).id
    first = store.claim_attempt("r1", [])
    assert first is not None and first.task_name == "a"
    assert store.claim_attempt("r2", []) is None  # b waits for a; a is running
    store.report_result(first.attempt_id, OK)
    assert run(store) == "b"
    assert run(store) == "c"
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED


def test_labels_runner_must_have_every_label(store: SqlStore) -> None:
    store.submit_workflow(
        wf(t("gpu", labels=("gpu",), priority=5), t("both", labels=("gpu", "big")), t("plain"))
    )
    assert run(store) == "plain"  # a runner without labels only gets unlabelled tasks
    assert store.claim_attempt("r1", []) is None
    assert store.claim_attempt("r1", ["big"]) is None
    assert run(store, labels=("gpu", "x")) == "gpu"
    assert run(store, labels=("big", "gpu")) == "both"


def test_labelled_runner_still_takes_unlabelled_work_in_order(store: SqlStore) -> None:
    store.submit_workflow(wf(t("plain", priority=1), t("gpu", labels=("gpu",)), t("low")))
    assert [run(store, labels=("gpu",)) for _ in range(3)] == ["plain", "gpu", "low"]


def test_claim_fills_attempt_and_task(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(
        wf(TaskSpec("a", "true", env={"A": "1"}, cwd="sub", duration=9, max_attempts=2))
    )
    claim = store.claim_attempt("runner-7", [])
    assert claim is not None and claim.attempt_number == 1
    assert claim.env == {"A": "1"} and claim.cwd == "sub" and claim.duration == 9
    task = store.get_task(claim.task_id)
    assert task.state == TaskState.IN_PROCESS and task.runner == "runner-7"
    assert task.started == T0 and task.attempts_used == 1
    (attempt,) = task.attempts or ()
    assert attempt.id == claim.attempt_id and attempt.status == AttemptStatus.RUNNING
    assert attempt.runner == "runner-7" and attempt.started == T0 and attempt.finished is None


# --- failures, retries, delays ------------------------------------------------------


def test_failed_attempt_retries_after_delay_then_fails(store: SqlStore, clock: FakeClock) -> None:
    wid = store.submit_workflow(wf(t("a", max_attempts=2, retry_delay=30))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    ack = store.report_result(claim.attempt_id, BAD)
    assert (ack.attempt_status, ack.task_state) == (AttemptStatus.FAILED, TaskState.TODO)
    assert store.claim_attempt("r1", []) is None  # retry_delay not passed
    clock.advance(29.9)
    assert store.claim_attempt("r1", []) is None
    clock.advance(0.1)
    second = store.claim_attempt("r1", [])
    assert second is not None and second.attempt_number == 2
    ack = store.report_result(second.attempt_id, Report(AttemptStatus.FAILED, message="gave up"))
    assert ack.task_state == TaskState.FAILED
    task = store.get_task(second.task_id)
    assert [a.reason for a in task.attempts or ()] == ["exit code 3", "gave up"]
    assert task.finished == clock.now and task.reason is None
    assert store.get_workflow(wid).state == WorkflowState.FAILED
    assert store.get_workflow(wid).finished == clock.now


def test_report_is_idempotent_same_answer(store: SqlStore) -> None:
    store.submit_workflow(wf(t("a", max_attempts=2)))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    first = store.report_result(claim.attempt_id, BAD)
    again = store.report_result(claim.attempt_id, BAD)
    other = store.report_result(claim.attempt_id, OK)  # a different second answer changes nothing
    assert first == again == other
    assert store.get_task(claim.task_id).attempts_used == 1
    assert store.read_output(claim.attempt_id) == "bad"


def test_output_keeps_last_mib_at_character_boundary(store: SqlStore) -> None:
    store.submit_workflow(wf(t("a")))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    text = "x" * 10 + "é" * (600 * 1024)  # 1.2 MB of two-byte characters
    store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0, text))
    kept = store.read_output(claim.attempt_id)
    assert len(kept.encode()) <= 1024 * 1024 and set(kept) == {"é"}
    assert len(kept.encode()) >= 1024 * 1024 - 1


# --- expiry -------------------------------------------------------------------------


def test_duration_expiry_times_out_and_retries(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a", duration=10, max_attempts=2)))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    clock.advance(9.9)
    assert store.get_task(claim.task_id).state == TaskState.IN_PROCESS
    clock.advance(0.1)
    task = store.get_task(claim.task_id)  # a read sees the expiry
    assert task.state == TaskState.TODO
    (attempt,) = task.attempts or ()
    assert attempt.status == AttemptStatus.TIMED_OUT and attempt.reason == "duration_exceeded"
    second = store.claim_attempt("r2", [])
    assert second is not None and second.attempt_number == 2
    clock.advance(10)
    assert store.list_tasks()[0].state == TaskState.FAILED  # no attempts left


@pytest.mark.parametrize(("duration", "ended"), [(10, T0 + 10), (None, T0 + HB)])
def test_an_expiry_noticed_late_dates_from_the_deadline(
    store: SqlStore, clock: FakeClock, duration: float | None, ended: float
) -> None:
    """Expiry is applied when the store is next used; its times must not depend on when."""
    store.submit_workflow(wf(t("a", duration=duration, max_attempts=2, retry_delay=30)))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    clock.now = ended + 40  # nobody looked until 40 s after the end; retry_delay ran out at 30
    task = store.get_task(claim.task_id)
    assert task.attempts is not None and task.attempts[0].finished == ended
    again = store.claim_attempt("r2", [])
    assert again is not None and again.attempt_number == 2


def test_heartbeat_keeps_alive_then_loss_fails(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a")))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    for _ in range(5):
        clock.advance(HB - 1)
        assert store.heartbeat(claim.attempt_id) is False
    assert store.get_task(claim.task_id).state == TaskState.IN_PROCESS
    clock.advance(HB)
    task = store.get_task(claim.task_id)
    assert task.state == TaskState.FAILED
    assert task.attempts[0].status == AttemptStatus.FAILED  # type: ignore[index]
    assert task.attempts[0].reason == "heartbeat_lost"  # type: ignore[index]
    assert store.metrics().attempts["running"] == 0


def test_expiry_is_applied_by_claims(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a", duration=1, max_attempts=2)))
    first = store.claim_attempt("r1", [])
    clock.advance(5)
    second = store.claim_attempt("r2", [])
    assert first is not None and second is not None and second.task_id == first.task_id


def test_late_success_completes_the_task(store: SqlStore, clock: FakeClock) -> None:
    wid = store.submit_workflow(wf(t("a", duration=10, max_attempts=3), t("b", "a"))).id
    first = store.claim_attempt("r1", [])
    assert first is not None
    clock.advance(11)
    second = store.claim_attempt("r2", [])  # the task was retried after the timeout
    assert second is not None and second.task_name == "a"
    ack = store.report_result(first.attempt_id, OK)  # the presumed-dead one finishes fine
    assert (ack.attempt_status, ack.task_state) == (AttemptStatus.COMPLETED, TaskState.COMPLETED)
    assert store.heartbeat(second.attempt_id) is True  # completed by another attempt: kill
    ack2 = store.report_result(second.attempt_id, Report(AttemptStatus.FAILED, exit_code=-15))
    assert ack2.task_state == TaskState.COMPLETED
    assert run(store) == "b"
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED


def test_late_failure_keeps_the_timeout_verdict(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a", duration=10, max_attempts=2)))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    clock.advance(10)
    ack = store.report_result(claim.attempt_id, Report(AttemptStatus.FAILED, exit_code=-9))
    assert (ack.attempt_status, ack.task_state) == (AttemptStatus.TIMED_OUT, TaskState.TODO)
    assert store.get_task(claim.task_id).attempts_used == 1


# --- failure fan-out and workflow state -------------------------------------------


def test_upstream_failed_through_diamond_independent_branch_goes_on(store: SqlStore) -> None:
    wid = store.submit_workflow(
        wf(t("a"), t("b", "a"), t("c", "a"), t("d", "b", "c"), t("e", "d"), t("side"))
    ).id
    assert run(store, BAD) == "a"
    assert states(store, wid) == {
        "a": ("failed", None),
        "b": ("failed", "upstream_failed"),
        "c": ("failed", "upstream_failed"),
        "d": ("failed", "upstream_failed"),
        "e": ("failed", "upstream_failed"),
        "side": ("todo", None),
    }
    assert store.get_workflow(wid).state == WorkflowState.RUNNING
    assert all(t.attempts_used == 0 for t in store.list_tasks(state=TaskState.FAILED)[1:])
    assert run(store) == "side"
    done = store.get_workflow(wid)
    assert done.state == WorkflowState.FAILED
    assert done.counts == {"todo": 0, "in_process": 0, "completed": 1, "failed": 5}


def test_failure_in_one_branch_of_diamond_spares_completed(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b", "a"), t("c", "a"), t("d", "b", "c"))).id
    assert [run(store), run(store)] == ["a", "b"]
    assert run(store, BAD) == "c"
    assert states(store, wid)["b"] == ("completed", None)
    assert states(store, wid)["d"] == ("failed", "upstream_failed")


# --- cancel, retry, delete ------------------------------------------------------------


def test_cancel_fails_open_tasks_and_signals_runners(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b"), t("c", "a"))).id
    done = store.claim_attempt("r1", [])
    held = store.claim_attempt("r2", [])
    assert done is not None and held is not None
    store.report_result(done.attempt_id, OK)
    got = store.cancel_workflow(wid)
    assert got.state == WorkflowState.FAILED and got.finished is not None
    assert states(store, wid) == {
        "a": ("completed", None),
        "b": ("failed", "cancelled"),
        "c": ("failed", "cancelled"),
    }
    assert store.heartbeat(held.attempt_id) is True
    attempt = store.get_task(held.task_id).attempts[0]  # type: ignore[index]
    assert attempt.status == AttemptStatus.FAILED and attempt.reason == "cancelled"
    with pytest.raises(Conflict):
        store.report_result(held.attempt_id, OK)
    assert store.claim_attempt("r1", []) is None


def test_retry_gives_fresh_budget_and_keeps_history(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a", max_attempts=2), t("b", "a"), t("ok"))).id
    assert run(store) == "a"
    store.cancel_workflow(wid)  # a stays completed; b and ok become cancelled
    retried = store.retry_workflow(wid)
    assert retried.state == WorkflowState.RUNNING and retried.finished is None
    assert states(store, wid) == {
        "a": ("completed", None),
        "b": ("todo", None),
        "ok": ("todo", None),
    }
    assert sorted([run(store), run(store)]) == ["b", "ok"]
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED


def test_retry_after_failure_resets_downstream_and_numbers_go_on(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a", max_attempts=2), t("b", "a"), t("c", "b"))).id
    assert [run(store, BAD), run(store, BAD)] == ["a", "a"]
    assert store.get_workflow(wid).state == WorkflowState.FAILED
    store.retry_workflow(wid)
    again = store.claim_attempt("r1", [])
    assert again is not None and again.task_name == "a" and again.attempt_number == 3
    task_a = store.list_tasks(workflow_id=wid)[0]
    assert task_a.state == TaskState.IN_PROCESS and task_a.attempts_used == 3
    attempts = store.get_task(task_a.id).attempts or ()
    assert [a.number for a in attempts] == [1, 2, 3]
    claim_id = attempts[-1].id
    store.report_result(claim_id, BAD)  # budget of 2 again: one failure leaves one
    assert store.get_task(task_a.id).state == TaskState.TODO
    assert states(store, wid)["c"] == ("todo", None)
    assert store.claim_attempt("r1", []) is not None  # a again, not b (b waits for a)
    assert store.list_tasks(state=TaskState.IN_PROCESS)[0].name == "a"


def test_delete_only_terminal_and_removes_everything(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    with pytest.raises(Conflict):
        store.delete_workflow(wid)
    store.report_result(claim.attempt_id, OK)
    store.delete_workflow(wid)
    with pytest.raises(NotFound):
        store.get_workflow(wid)
    with pytest.raises(NotFound):
        store.read_output(claim.attempt_id)
    assert store.list_tasks() == [] and store.metrics().attempts["completed"] == 0


# --- lists, paging, metrics, marker -------------------------------------------------


def test_list_workflows_newest_first_with_paging_and_state(store: SqlStore) -> None:
    ids = [store.submit_workflow(wf(t("a"), name=f"w{i}")).id for i in range(5)]
    store.cancel_workflow(ids[1])
    page1 = store.list_workflows(limit=2)
    assert [w.id for w in page1] == ids[:2:-1][:2] == [ids[4], ids[3]]
    page2 = store.list_workflows(limit=2, before=page1[-1].id)
    assert [w.id for w in page2] == [ids[2], ids[1]]
    assert [w.id for w in store.list_workflows(limit=2, before=page2[-1].id)] == [ids[0]]
    assert [w.id for w in store.list_workflows(state=WorkflowState.FAILED)] == [ids[1]]
    assert store.list_workflows()[0].tasks is None


def test_list_tasks_filters(store: SqlStore) -> None:
    w1 = store.submit_workflow(wf(t("a"), t("b"))).id
    w2 = store.submit_workflow(wf(t("c"))).id
    run(store)
    assert [x.name for x in store.list_tasks()] == ["a", "b", "c"]
    assert [x.name for x in store.list_tasks(workflow_id=w2)] == ["c"]
    assert [x.name for x in store.list_tasks(state=TaskState.TODO)] == ["b", "c"]
    assert [x.name for x in store.list_tasks(TaskState.COMPLETED, w1)] == ["a"]
    assert store.list_tasks(TaskState.COMPLETED, w2) == []


def test_metrics_and_change_marker(store: SqlStore, store_url: str, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a"), t("b", "a")))
    before = store.change_marker()
    other = open_store(store_url, clock=clock)
    try:
        run(other)  # another connection completes a, and so b becomes claimable
    finally:
        other.close()
    wait_until(lambda: store.change_marker() != before, what="the marker to move")
    mid = store.change_marker()
    run(store, BAD)  # and this connection's own commit changes it too
    assert store.change_marker() != mid
    m = store.metrics()
    assert m.tasks == {"todo": 0, "in_process": 0, "completed": 1, "failed": 1}
    assert m.attempts == {"running": 0, "completed": 1, "failed": 1, "timed_out": 0}
    store.check()


def test_retry_delay_also_follows_a_timeout(store: SqlStore, clock: FakeClock) -> None:
    store.submit_workflow(wf(t("a", duration=5, max_attempts=2, retry_delay=20)))
    first = store.claim_attempt("r1", [])
    assert first is not None
    clock.advance(5)
    assert store.claim_attempt("r1", []) is None  # timed out now; ready 20 s later
    assert store.heartbeat(first.attempt_id) is False  # not terminal: the runner may go on
    assert store.get_task(first.task_id).attempts[0].status == AttemptStatus.TIMED_OUT  # type: ignore[index]
    clock.advance(20)
    again = store.claim_attempt("r1", [])
    assert again is not None and again.attempt_number == 2


def test_claim_reads_one_index_entry_not_a_scan(tmp_path: Path, clock: FakeClock) -> None:
    """The claim query walks the partial claim-order index: no sort, no table scan."""
    import sqlite3

    from stq.store import claim
    from stq.store.statements import for_dialect

    store = _open_sqlite(tmp_path, clock)
    store.close()
    queries = for_dialect("sqlite")
    conn = sqlite3.connect(tmp_path / "stq.db")
    try:
        for plain in (claim.FIRST_PLAIN, claim.TAKE_PLAIN):
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + queries[plain], (0,))]
            assert plan == ["SCAN task USING INDEX task_claimable_plain"]
        for first in (claim.FIRST_LABELLED, claim.TAKE_LABELLED):
            explain = "EXPLAIN QUERY PLAN " + queries[first]
            plan = [row[3] for row in conn.execute(explain, (0, "[]"))]
            assert plan == ["SEARCH task USING INDEX task_claimable_labelled (labels=?)"]
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + queries[claim.LABEL_SETS])]
        assert not any(step.startswith("SCAN task") for step in plan), plan
    finally:
        conn.close()


def test_newer_schema_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    import sqlite3

    from stq.errors import StqError

    _open_sqlite(tmp_path, clock).close()
    conn = sqlite3.connect(tmp_path / "stq.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StqError, match="newer STQ"):
        _open_sqlite(tmp_path, clock)


def test_reads_write_nothing_unless_something_expired(store: SqlStore, clock: FakeClock) -> None:
    wid = store.submit_workflow(wf(t("a", duration=10))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    marker = store.change_marker()
    clock.advance(9)
    assert store.get_workflow(wid).state == WorkflowState.RUNNING
    assert store.get_task(claim.task_id).state == TaskState.IN_PROCESS
    assert store.metrics().attempts["running"] == 1
    assert store.change_marker() == marker  # nothing was due: no write transaction
    clock.advance(1)
    store.list_workflows()
    assert store.change_marker() != marker  # the expiry was written by the read


def test_cancel_of_a_finished_workflow_changes_nothing(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"))).id
    run(store)
    done = store.get_workflow(wid)
    again = store.cancel_workflow(wid)
    assert again.state == WorkflowState.COMPLETED and again.finished == done.finished
    assert states(store, wid) == {"a": ("completed", None)}
    assert store.retry_workflow(wid).state == WorkflowState.COMPLETED  # nothing failed


def test_output_with_nul_bytes_is_stored(store: SqlStore) -> None:
    """A command may print NUL; PostgreSQL text cannot hold it, so it becomes U+FFFD there."""
    store.submit_workflow(wf(t("a")))
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    store.report_result(claim.attempt_id, Report(AttemptStatus.COMPLETED, 0, "a\x00b end"))
    assert store.read_output(claim.attempt_id) in ("a\x00b end", "a\ufffdb end")


class _Aborted(Exception):
    """Stands for PostgreSQL aborting a transaction to break a deadlock."""


class _AbortingDialect(SqliteDialect):
    retry_errors = (_Aborted,)
    serial_writes = False  # no read-only look before a claim: the clock is read in writes only


def test_a_write_the_database_aborted_runs_again(tmp_path: Path, clock: FakeClock) -> None:
    aborts = {"left": 2}

    def aborting_clock() -> float:  # read inside each write transaction, once per run
        if aborts["left"]:
            aborts["left"] -= 1
            raise _Aborted
        return clock()

    store = SqlStore(_AbortingDialect(str(tmp_path / "stq.db")), clock=clock)
    wid = store.submit_workflow(wf(t("a"), t("b"))).id
    store.clock = aborting_clock
    claim = store.claim_attempt("r1", [])  # aborted twice, then run a third time
    assert claim is not None and aborts["left"] == 0
    assert store.get_workflow(wid).counts == {
        "todo": 1,
        "in_process": 1,  # the aborted runs left nothing behind
        "completed": 0,
        "failed": 0,
    }
    aborts["left"] = 99
    with pytest.raises(StoreUnavailable, match="failed"):
        store.report_result(claim.attempt_id, OK)
    store.clock = clock
    assert store.get_task(claim.task_id).state == TaskState.IN_PROCESS
    store.close()


def test_report_and_claim_is_one_step(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b", "a"), t("c"))).id
    first = store.claim_attempt("r1", [])
    assert first is not None and first.task_name == "a"
    ack, nxt = store.report_and_claim(first.attempt_id, OK, "r1", [])
    assert ack.task_state == TaskState.COMPLETED
    assert nxt is not None and nxt.task_name == "b"  # released by the result it came with
    assert store.get_workflow(wid).counts == {
        "todo": 1,
        "in_process": 1,
        "completed": 1,
        "failed": 0,
    }


def test_a_result_that_starts_the_next_attempt_leaves_the_state_unread(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy runner's result and next claim in one workflow cannot end it: no count read."""
    store = _open_sqlite(tmp_path, clock)
    settled: list[int] = []
    settle = transitions.settle
    monkeypatch.setattr(
        transitions, "settle", lambda tx, wid: (settled.append(wid), settle(tx, wid))[1]
    )
    wid = store.submit_workflow(wf(t("a"), t("b"))).id
    first = store.claim_attempt("r1", [])
    assert first is not None
    settled.clear()  # the submit settles its new workflow
    _, nxt = store.report_and_claim(first.attempt_id, OK, "r1", [])
    assert nxt is not None and settled == []  # "b" runs: the workflow runs
    _, none = store.report_and_claim(nxt.attempt_id, OK, "r1", [])
    assert none is None and len(settled) == 1  # nothing started: the counts decide, and
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED  # the workflow ended
    store.close()


def test_a_repeated_result_gets_the_same_next_attempt(store: SqlStore) -> None:
    """The runner lost the answer and sends the result again: no second claim to orphan."""
    wid = store.submit_workflow(wf(t("a"), t("b"), t("c"))).id
    first = store.claim_attempt("r1", [])
    assert first is not None
    ack, nxt = store.report_and_claim(first.attempt_id, OK, "r1", [])
    again, same = store.report_and_claim(first.attempt_id, OK, "r1", [])
    assert (again, same) == (ack, nxt)
    assert nxt is not None and nxt.task_name == "b"
    assert store.get_workflow(wid).counts["in_process"] == 1
    store.report_result(nxt.attempt_id, OK)  # once that attempt has ended, a repeat claims anew
    _, fresh = store.report_and_claim(first.attempt_id, OK, "r1", [])
    assert fresh is not None and fresh.task_name == "c"


def test_a_cancelled_attempt_is_told_to_stop_even_after_a_retry(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    store.cancel_workflow(wid)
    store.retry_workflow(wid)  # the task is todo again; the old command must still stop
    assert store.heartbeat(claim.attempt_id) is True
    second = store.claim_attempt("r2", [])
    assert second is not None and store.heartbeat(second.attempt_id) is False


def test_a_refused_result_claims_nothing(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b"))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    store.cancel_workflow(wid)
    store.retry_workflow(wid)  # b is claimable again, but the result for a is refused
    with pytest.raises(Conflict):
        store.report_and_claim(claim.attempt_id, OK, "r1", [])
    assert store.get_workflow(wid).counts["in_process"] == 0
    assert store.metrics().attempts["running"] == 0


def test_a_workflow_whose_settle_was_lost_is_settled_when_read(
    store: SqlStore, store_url: str, clock: FakeClock
) -> None:
    """A server killed between a last completion's commit and its state check."""
    wid = store.submit_workflow(wf(t("a"))).id
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    with store._db.transaction(store.dialect.begin_write) as tx:  # no settle after it
        reports.report(tx, parse_id("a", claim.attempt_id), OK)
        tx.dialect = _NoSettle(tx.dialect)
        transitions.apply_counts(tx)
    other = open_store(store_url, clock=clock)
    try:
        if not store.dialect.serial_writes:  # (SQLite settles inside the write itself)
            done = other.list_workflows(state=WorkflowState.COMPLETED)
            assert [w.id for w in done] == [wid]  # a filtered list finds it too
        listed = other.list_workflows()
        assert [(w.id, w.state) for w in listed] == [(wid, WorkflowState.COMPLETED)]
        assert other.get_workflow(wid).finished is not None
    finally:
        other.close()


class _NoSettle:
    """A dialect as PostgreSQL's looks to ``apply_counts``: no settling inside writes."""

    serial_writes = False

    def __init__(self, inner: object):
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_version_1_store_is_migrated_on_open(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "old.db") if kind == "sqlite" else request.getfixturevalue("pg_empty_url")
    _write_version_1(url, kind)
    store = open_store(url)
    try:
        (old,) = store.list_workflows()
        assert old.counts == {"todo": 1, "in_process": 0, "completed": 0, "failed": 0}
        claim = store.claim_attempt("r1", [])
        assert claim is not None and claim.task_name == "a"
        store.report_result(claim.attempt_id, OK)
        done = store.get_workflow(old.id)
        assert done.state == WorkflowState.COMPLETED and done.counts["completed"] == 1
        assert store.submit_workflow(wf(t("b")), Idempotency("k", "h")).created  # version 4
    finally:
        store.close()
    store = open_store(url)  # a second open finds the current version and changes nothing
    store.close()


def _write_version_1(url: str, kind: str) -> None:
    """A store as STQ with schema version 1 left it: one workflow of one todo task."""
    rows = [
        "INSERT INTO workflow (name, state, created, n_todo) VALUES ('old', 'running', 1, 1)",
        "INSERT INTO task (workflow_id, position, name, state, command, env, max_attempts, "
        "priority, retry_delay, depends_on, pending_deps, created) "
        "VALUES (1, 0, 'a', 'todo', '\"true\"', '{}', 1, 0, 0, '[]', 0, 1)",
    ]
    if kind == "sqlite":
        conn = sqlite3.connect(url)
        for statement in [*schema_statements("sqlite.sql"), *rows, "PRAGMA user_version = 1"]:
            conn.execute(statement)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in [*schema_statements("postgres.sql"), *rows]:
            pg.execute(statement)
        pg.execute("INSERT INTO stq_schema (version) VALUES (1)")


def test_threads_that_end_leave_no_open_database_files(tmp_path: Path, clock: FakeClock) -> None:
    """The server answers each HTTP connection on its own thread: their SQLite
    connections are handed on to later threads, not left open one per thread."""
    store = _open_sqlite(tmp_path, clock)

    def fifty_threads() -> None:
        for _ in range(50):
            thread = threading.Thread(target=lambda: store.list_workflows(limit=1))
            thread.start()
            thread.join()

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    try:
        fifty_threads()
        before = open_files()
        fifty_threads()
        assert open_files() == before
    finally:
        store.close()


# --- idempotent submits -------------------------------------------------------------


def test_a_repeated_key_returns_the_first_workflow_as_it_is_now(store: SqlStore) -> None:
    once = Idempotency("retry-1", "aa")
    first = store.submit_workflow(wf(t("a"), t("b", "a")), once)
    assert first.created and first.workflow.state == WorkflowState.RUNNING
    assert run(store) == "a"
    again = store.submit_workflow(wf(t("a"), t("b", "a")), once)
    assert not again.created
    assert again.workflow.id == first.workflow.id
    assert [(x.id, x.name) for x in again.workflow.tasks or ()] == [
        (x.id, x.name) for x in first.workflow.tasks or ()
    ]
    assert [x.state for x in again.workflow.tasks or ()] == [TaskState.COMPLETED, TaskState.TODO]
    assert [w.id for w in store.list_workflows()] == [first.workflow.id]
    assert len(store.list_tasks()) == 2


def test_a_key_reused_with_another_body_is_a_conflict(store: SqlStore) -> None:
    first = store.submit_workflow(wf(t("a")), Idempotency("k", "aa"))
    with pytest.raises(Conflict, match=f"another request body \\(workflow {first.workflow.id}\\)"):
        store.submit_workflow(wf(t("a")), Idempotency("k", "bb"))
    assert len(store.list_workflows()) == 1
    assert store.submit_workflow(wf(t("a")), Idempotency("k2", "bb")).created  # another key


def test_a_key_counts_for_24_hours_by_the_store_clock(store: SqlStore, clock: FakeClock) -> None:
    once = Idempotency("k", "aa")
    first = store.submit_workflow(wf(t("a")), once).workflow.id
    clock.advance(IDEMPOTENCY_WINDOW - 1)
    assert store.submit_workflow(wf(t("a")), once).workflow.id == first
    clock.advance(1)
    second = store.submit_workflow(wf(t("a")), Idempotency("k", "bb"))  # 24 h on: a new key
    assert second.created and second.workflow.id != first
    assert store.submit_workflow(wf(t("a")), Idempotency("k", "bb")).workflow.id == (
        second.workflow.id
    )


def test_expired_keys_are_deleted_by_later_keyed_submits(
    store: SqlStore, clock: FakeClock
) -> None:
    for number in range(3):
        store.submit_workflow(wf(t("a")), Idempotency(f"old{number}", "aa"))
    clock.advance(IDEMPOTENCY_WINDOW)
    store.submit_workflow(wf(t("a")))  # a submit without a key touches no key
    assert _keys(store) == ["old0", "old1", "old2"]
    store.submit_workflow(wf(t("a")), Idempotency("new", "aa"))
    assert _keys(store) == ["new"]
    assert len(store.list_workflows()) == 5  # workflows stay: only their keys expire


def test_deleting_the_workflow_forgets_its_key(store: SqlStore) -> None:
    once = Idempotency("k", "aa")
    first = store.submit_workflow(wf(t("a")), once).workflow.id
    run(store)
    store.delete_workflow(first)
    assert _keys(store) == []
    again = store.submit_workflow(wf(t("a")), once)
    assert again.created and again.workflow.id != first


def test_one_key_submitted_from_many_threads_at_once_creates_one_workflow(
    store: SqlStore,
) -> None:
    spec = wf(*(t(f"t{i}") for i in range(300)))  # a write long enough for the tries to overlap
    once = Idempotency("storm", "aa")
    start = threading.Barrier(8)

    def submit() -> tuple[str, bool]:
        start.wait()
        workflow, created = store.submit_workflow(spec, once)
        return workflow.id, created

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(), range(8)))
    assert len({wid for wid, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False] * 7 + [True]
    assert len(store.list_workflows()) == 1 and len(store.list_tasks()) == 300


@pytest.mark.parametrize("first_ends", ["commit", "rollback"])
def test_a_repeat_waits_for_the_first_submit_of_its_key(
    store: SqlStore, store_url: str, clock: FakeClock, first_ends: str
) -> None:
    """The first submit, caught with its key taken and its workflow not yet committed,
    holds the repeat back: the repeat then answers with its workflow, or, if it rolled
    back, creates the workflow itself."""
    once = Idempotency("slow", "aa")
    first = _FirstSubmit(store_url, once, clock())
    with ThreadPoolExecutor(1) as pool:
        repeat = pool.submit(store.submit_workflow, wf(t("a")), once)
        try:
            first.wait_until_blocking(repeat, store_url)
        finally:
            first.end(first_ends)
        workflow, created = repeat.result(timeout=10)
    if first_ends == "commit":
        assert not created and workflow.id == f"w{first.workflow_id}" and workflow.name == "first"
    else:
        assert created and workflow.name == "wf"
    assert len(store.list_workflows()) == 1


def _keys(store: SqlStore) -> list[str]:
    with store._db.transaction(store.dialect.begin_read) as tx:
        rows = tx.conn.execute("SELECT idempotency_key FROM submission ORDER BY 1")
        return [row[0] for row in rows]


class _FirstSubmit:
    """A keyed submit in flight, on its own connection: key taken, workflow not committed."""

    def __init__(self, url: str, once: Idempotency, now: float):
        self.postgres = url.startswith("postgresql://")
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(url)  # not autocommit: one open transaction
        else:
            self.conn = sqlite3.connect(url, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        mark = "%s" if self.postgres else "?"
        self.workflow_id = self.conn.execute(
            "INSERT INTO workflow (name, state, created) "
            f"VALUES ('first', 'running', {mark}) RETURNING id",
            (now,),
        ).fetchone()[0]
        self.conn.execute(
            "INSERT INTO submission (idempotency_key, body_sha256, workflow_id, created) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})",
            (once.key, once.body_sha256, self.workflow_id, now),
        )

    def wait_until_blocking(self, repeat: Future[Any], url: str) -> None:
        """Until the repeat waits for this transaction (PostgreSQL: a lock wait on the key)."""
        if not self.postgres:  # SQLite shows no waiters: the repeat must still be waiting
            with pytest.raises(TimeoutError):
                repeat.result(timeout=0.5)
            return
        import psycopg

        with psycopg.connect(url, autocommit=True) as watcher:  # a fresh view each query

            def waiting() -> bool:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO submission%'"
                ).fetchone()
                return row is not None and row[0] == 1

            wait_until(waiting, timeout=10, what="the repeat to wait for the key")
        assert not repeat.done()

    def end(self, how: str) -> None:
        self.conn.execute("COMMIT" if how == "commit" else "ROLLBACK")
        self.conn.close()
