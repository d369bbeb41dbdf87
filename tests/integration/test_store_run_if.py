"""``run_if`` (docs/semantics.md) in the store, on a real SQLite file and the real PostgreSQL.

``on_failure`` tasks run when a dependency failed and are skipped (completed,
reason ``skipped``, no attempt) when all completed; ``always`` tasks run once
every dependency ended; ``upstream_failed`` stops at both. Cancel fails them
too; retry decides them again. Specs are built directly, as the loader makes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import pytest

from stq.model import (
    AttemptStatus,
    Claim,
    Report,
    RunIf,
    Task,
    TaskReason,
    TaskSpec,
    TaskState,
    WaitingFor,
    WaitKind,
    Workflow,
    WorkflowSpec,
    WorkflowState,
)
from stq.store import open_store
from stq.store.sql import SqlStore
from tests.integration import test_store as base
from tests.integration.test_store import BAD, HB, OK, FakeClock, run, states, t, wf

clock = base.clock
store = base.store
store_url = base.store_url

ON_FAILURE = {"run_if": RunIf.ON_FAILURE}
ALWAYS = {"run_if": RunIf.ALWAYS}
SKIPPED = ("completed", "skipped")
UPSTREAM = ("failed", "upstream_failed")
CANCELLED = ("failed", "cancelled")


def ready(store: SqlStore, workflow_id: str) -> list[str]:
    """The workflow's tasks a runner could claim now (waiting only for a runner)."""
    return [
        task.name
        for task in store.get_workflow(workflow_id).tasks or ()
        if task.waiting_for == WaitingFor(WaitKind.RUNNER)
    ]


def _as_submitted(read: Workflow) -> Workflow:
    """A workflow as read, as a submit answers it (which tells no waits)."""
    return replace(read, tasks=tuple(replace(t, waiting_for=None) for t in read.tasks or ()))


def counts(store: SqlStore, workflow_id: str) -> dict[str, int]:
    return dict(store.get_workflow(workflow_id).counts)


def task(store: SqlStore, workflow_id: str, name: str) -> Task:
    (found,) = [t for t in store.get_workflow(workflow_id).tasks or () if t.name == name]
    return store.get_task(found.id)


# --- on_failure ----------------------------------------------------------------------


def test_on_failure_runs_when_a_dependency_fails(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("ok"), t("notify", "a", "ok", **ON_FAILURE))).id
    assert ready(store, wid) == ["a", "ok"]
    assert run(store, BAD) == "a"
    assert states(store, wid)["notify"] == ("todo", None)  # ok has not ended yet
    assert run(store) == "ok"
    assert ready(store, wid) == ["notify"]
    assert run(store) == "notify"
    done = store.get_workflow(wid)
    assert states(store, wid)["notify"] == ("completed", None)
    assert done.state == WorkflowState.FAILED  # a failed: not every task completed
    assert done.counts == {"todo": 0, "in_process": 0, "completed": 2, "failed": 1}


def test_on_failure_is_skipped_when_every_dependency_completed(
    store: SqlStore, clock: FakeClock
) -> None:
    wid = store.submit_workflow(
        wf(t("a"), t("notify", "a", **ON_FAILURE), t("after", "notify"))
    ).id
    clock.advance(5)
    assert run(store) == "a"
    skipped = task(store, wid, "notify")
    assert (skipped.state, skipped.reason) == (TaskState.COMPLETED, TaskReason.SKIPPED)
    assert skipped.attempts == () and skipped.attempts_used == 0
    assert skipped.finished == clock.now and skipped.waiting_for is None
    assert ready(store, wid) == ["after"]  # a skip is a completion: it releases its dependents
    assert run(store) == "after"
    done = store.get_workflow(wid)
    assert done.state == WorkflowState.COMPLETED  # skipped counts as completed
    assert done.counts == {"todo": 0, "in_process": 0, "completed": 3, "failed": 0}
    assert store.claim_attempt("r1", []) is None


def test_on_failure_without_dependencies_is_skipped_at_submit_and_cascades(
    store: SqlStore,
) -> None:
    spec = wf(
        t("lonely", **ON_FAILURE),
        t("then", "lonely", **ON_FAILURE),  # its only dependency was skipped: completed
        t("next", "then"),
        t("work"),
    )
    got = store.submit_workflow(spec)
    assert [(t.name, t.state.value, t.reason) for t in got.tasks or ()] == [
        ("lonely", "completed", "skipped"),
        ("then", "completed", "skipped"),
        ("next", "todo", None),
        ("work", "todo", None),
    ]
    assert got.counts == {"todo": 2, "in_process": 0, "completed": 2, "failed": 0}
    read = store.get_workflow(got.id)
    assert got == replace(
        read, tasks=tuple(replace(t, waiting_for=None) for t in read.tasks or ())
    )
    assert sorted([run(store), run(store)]) == ["next", "work"]
    assert store.get_workflow(got.id).state == WorkflowState.COMPLETED


def test_a_workflow_of_skipped_tasks_only_is_completed_at_submit(store: SqlStore) -> None:
    got = store.submit_workflow(wf(t("n1", **ON_FAILURE), t("n2", "n1", **ON_FAILURE)))
    assert got.state == WorkflowState.COMPLETED and got.finished is not None
    assert store.get_workflow(got.id).state == WorkflowState.COMPLETED


# --- always --------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [OK, BAD], ids=["after-success", "after-failure"])
def test_always_runs_whatever_its_dependencies_became(store: SqlStore, outcome: Report) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b"), t("cleanup", "a", "b", **ALWAYS))).id
    assert run(store, outcome) == "a"
    wait = task(store, wid, "cleanup").waiting_for
    assert wait == WaitingFor(WaitKind.DEPENDENCIES, tasks=("b",))  # only the one not ended
    assert run(store) == "b"
    assert run(store) == "cleanup"
    assert states(store, wid)["cleanup"] == ("completed", None)
    expected = WorkflowState.COMPLETED if outcome is OK else WorkflowState.FAILED
    assert store.get_workflow(wid).state == expected


def test_always_and_on_failure_without_dependencies(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("first", **ALWAYS), t("n", **ON_FAILURE))).id
    assert states(store, wid)["n"] == SKIPPED
    assert ready(store, wid) == ["first"]
    assert run(store) == "first"


# --- upstream_failed stops at on_failure and always -----------------------------------


@pytest.mark.parametrize("cleanup", [OK, BAD], ids=["cleanup-ok", "cleanup-fails"])
def test_upstream_failed_stops_at_always_whose_outcome_decides_its_dependents(
    store: SqlStore, cleanup: Report
) -> None:
    wid = store.submit_workflow(
        wf(t("a"), t("b", "a"), t("cleanup", "b", **ALWAYS), t("after", "cleanup"), t("c", "b"))
    ).id
    assert run(store, BAD) == "a"
    assert states(store, wid) == {
        "a": ("failed", None),
        "b": UPSTREAM,
        "cleanup": ("todo", None),
        "after": ("todo", None),
        "c": UPSTREAM,
    }
    assert ready(store, wid) == ["cleanup"]
    assert run(store, cleanup) == "cleanup"
    if cleanup is OK:
        assert run(store) == "after"
        assert states(store, wid)["after"] == ("completed", None)
    else:
        assert states(store, wid)["after"] == UPSTREAM
    assert store.get_workflow(wid).state == WorkflowState.FAILED


def test_chain_of_failure_notifier_cleanup_and_after(store: SqlStore) -> None:
    spec = wf(
        t("build"),
        t("notify", "build", **ON_FAILURE),
        t("cleanup", "build", "notify", **ALWAYS),
        t("after", "cleanup"),
    )
    failing = store.submit_workflow(spec).id
    assert run(store, BAD) == "build"
    assert ready(store, failing) == ["notify"]  # cleanup also waits for notify
    assert [run(store), run(store), run(store)] == ["notify", "cleanup", "after"]
    assert store.get_workflow(failing).state == WorkflowState.FAILED
    assert store.get_workflow(failing).counts["completed"] == 3

    passing = store.submit_workflow(replace(spec, name="again")).id
    assert run(store) == "build"
    assert states(store, passing)["notify"] == SKIPPED
    assert [run(store), run(store)] == ["cleanup", "after"]
    assert store.get_workflow(passing).state == WorkflowState.COMPLETED


def test_expiry_is_a_failure_like_any_other(store: SqlStore, clock: FakeClock) -> None:
    wid = store.submit_workflow(
        wf(
            t("slow", duration=5),
            t("b", "slow"),
            t("notify", "slow", **ON_FAILURE),
            t("cleanup", "b", **ALWAYS),
        )
    ).id
    started = clock.now
    claim = store.claim_attempt("r1", [])
    assert claim is not None and claim.task_name == "slow"
    clock.advance(6)
    assert states(store, wid) == {
        "slow": ("failed", None),
        "b": UPSTREAM,
        "notify": ("todo", None),
        "cleanup": ("todo", None),
    }
    assert task(store, wid, "b").finished == started + 5  # failed when the duration passed
    assert sorted([run(store), run(store)]) == ["cleanup", "notify"]


def test_lost_heartbeat_releases_an_on_failure_task(store: SqlStore, clock: FakeClock) -> None:
    wid = store.submit_workflow(wf(t("a"), t("notify", "a", **ON_FAILURE))).id
    assert store.claim_attempt("r1", []) is not None
    clock.advance(HB)
    assert ready(store, wid) == ["notify"]


# --- cancel and retry -----------------------------------------------------------------


def test_cancel_fails_on_failure_and_always_tasks_that_have_not_run(store: SqlStore) -> None:
    wid = store.submit_workflow(
        wf(t("a"), t("b"), t("notify", "a", **ON_FAILURE), t("cleanup", "a", "b", **ALWAYS))
    ).id
    assert run(store, BAD) == "a"
    assert ready(store, wid) == ["b", "notify"]
    held = store.claim_attempt("r2", [])
    assert held is not None and held.task_name == "b"
    got = store.cancel_workflow(wid)
    assert got.state == WorkflowState.FAILED
    assert states(store, wid) == {
        "a": ("failed", None),
        "b": CANCELLED,
        "notify": CANCELLED,
        "cleanup": CANCELLED,
    }
    assert store.claim_attempt("r1", []) is None  # nothing runs after a cancel


def test_a_notifier_that_ran_is_skipped_after_a_retry_that_succeeds(store: SqlStore) -> None:
    wid = store.submit_workflow(
        wf(t("a"), t("notify", "a", **ON_FAILURE), t("after", "notify"))
    ).id
    assert [run(store, BAD), run(store), run(store)] == ["a", "notify", "after"]
    assert store.get_workflow(wid).state == WorkflowState.FAILED
    retried = store.retry_workflow(wid)
    assert retried.state == WorkflowState.RUNNING
    assert retried.counts == {"todo": 3, "in_process": 0, "completed": 0, "failed": 0}
    assert ready(store, wid) == ["a"]  # notify and after wait for a again
    assert run(store) == "a"
    notify = task(store, wid, "notify")
    assert (notify.state, notify.reason) == (TaskState.COMPLETED, TaskReason.SKIPPED)
    assert notify.attempts_used == 1 and len(notify.attempts or ()) == 1  # its history stays
    assert run(store) == "after"
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED


def test_a_skipped_on_failure_task_runs_after_a_retry_that_fails_again(store: SqlStore) -> None:
    wid = store.submit_workflow(
        wf(t("z"), t("a"), t("cleanup", "a", **ALWAYS), t("notify", "cleanup", **ON_FAILURE))
    ).id
    assert [run(store), run(store, BAD)] == ["z", "a"]
    assert run(store) == "cleanup"  # ran after a failed, and completed
    assert states(store, wid)["notify"] == SKIPPED
    assert store.get_workflow(wid).state == WorkflowState.FAILED
    store.retry_workflow(wid)
    # a failed, so cleanup and notify downstream of it go back; z (completed, beside) stays
    assert states(store, wid) == {
        "z": ("completed", None),
        "a": ("todo", None),
        "cleanup": ("todo", None),
        "notify": ("todo", None),
    }
    assert [run(store, BAD), run(store, BAD)] == ["a", "cleanup"]
    assert ready(store, wid) == ["notify"]
    assert run(store) == "notify"
    assert states(store, wid)["notify"] == ("completed", None)
    assert counts(store, wid) == {"todo": 0, "in_process": 0, "completed": 2, "failed": 2}


def test_retry_recounts_an_always_task_still_waiting(store: SqlStore) -> None:
    wid = store.submit_workflow(wf(t("a"), t("b"), t("cleanup", "a", "b", **ALWAYS))).id
    assert run(store, BAD) == "a"
    store.retry_workflow(wid)  # while b still waits: cleanup waits for a again, too
    wait = task(store, wid, "cleanup").waiting_for
    assert wait == WaitingFor(WaitKind.DEPENDENCIES, tasks=("a", "b"))
    assert sorted([run(store), run(store)]) == ["a", "b"]
    assert run(store) == "cleanup"
    assert store.get_workflow(wid).state == WorkflowState.COMPLETED


# --- many at once ----------------------------------------------------------------------


def test_a_failure_reaching_hundreds_of_tasks_releases_what_waits_on_all_of_them(
    store: SqlStore,
) -> None:
    """More tasks than one statement passes at once, through failure and skip cascades."""
    many = [f"b{i}" for i in range(1_100)]
    wid = store.submit_workflow(
        wf(
            t("root"),
            *(t(name, "root") for name in many),
            t("cleanup", "root", *many, **ALWAYS),
            *(t(f"n{i}", "cleanup", **ON_FAILURE) for i in range(600)),
            t("end", *(f"n{i}" for i in range(600))),
        )
    ).id
    assert run(store, BAD) == "root"
    assert ready(store, wid) == ["cleanup"]
    assert counts(store, wid)["failed"] == 1_101
    assert run(store) == "cleanup"  # completed: every notifier is skipped, then end is released
    assert ready(store, wid) == ["end"]
    assert counts(store, wid) == {"todo": 1, "in_process": 0, "completed": 601, "failed": 1_101}


def test_dependencies_of_one_task_ending_side_by_side_on_two_servers(store_url: str) -> None:
    """Each pair's two results go to two stores at once: the later one decides the rest."""
    pairs = 24
    tasks: list[TaskSpec] = []
    for i in range(pairs):
        tasks += [
            t(f"a{i}"),
            t(f"b{i}"),
            t(f"notify{i}", f"a{i}", f"b{i}", **ON_FAILURE),
            t(f"cleanup{i}", f"a{i}", f"b{i}", **ALWAYS),
        ]
    outcomes = [(OK, OK), (BAD, OK), (BAD, BAD)]
    with _two_servers(store_url) as (one, two):
        wid = one.submit_workflow(WorkflowSpec("pairs", tuple(tasks))).id
        claims = {c.task_name: c for c in (one.claim_attempt("r", []) for _ in range(2 * pairs))}
        gate = threading.Barrier(2)

        def report(server: SqlStore, side: str, which: int) -> None:
            for i in range(pairs):
                gate.wait(10)
                server.report_result(claims[f"{side}{i}"].attempt_id, outcomes[i % 3][which])

        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(report, one, "a", 0), pool.submit(report, two, "b", 1)]
            for future in done:
                future.result(60)
        got = states(one, wid)
        waiting = set(ready(two, wid))
    for i in range(pairs):
        both_ok = i % 3 == 0
        assert got[f"notify{i}"] == (SKIPPED if both_ok else ("todo", None)), i
        assert (f"notify{i}" in waiting) is not both_ok, i
        assert f"cleanup{i}" in waiting, i


@contextmanager
def _two_servers(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database, as two servers behind a load balancer have."""
    one = open_store(url, heartbeat_timeout=HB)
    two = open_store(url, heartbeat_timeout=HB)
    try:
        yield one, two  # type: ignore[misc]
    finally:
        one.close()  # type: ignore[attr-defined]
        two.close()  # type: ignore[attr-defined]


# --- stored fields --------------------------------------------------------------------


def test_description_matrix_and_params_are_stored_and_read_back(store: SqlStore) -> None:
    spec = WorkflowSpec(
        "ci",
        (
            TaskSpec(
                "test-311-linux",
                "tox",
                description="Unit tests",
                matrix={"PY": "311", "OS": "linux"},
                matrix_of="test",
                env={"PY": "311", "OS": "linux", "BRANCH": "main"},
            ),
            TaskSpec("notify", "true", depends_on=("test-311-linux",), run_if=RunIf.ON_FAILURE),
        ),
        params={"BRANCH": "main", "DAY": "2026-12-06"},
    )
    got = store.submit_workflow(spec)
    read = store.get_workflow(got.id)
    assert read.params == {"BRANCH": "main", "DAY": "2026-12-06"}
    assert list(read.params) == ["BRANCH", "DAY"]
    first, notify = read.tasks or ()
    assert first.description == "Unit tests" and first.matrix_of == "test"
    assert first.matrix == {"PY": "311", "OS": "linux"} and list(first.matrix) == ["PY", "OS"]
    assert first.run_if == RunIf.ON_SUCCESS and notify.run_if == RunIf.ON_FAILURE
    assert notify.description is None and notify.matrix is None and notify.matrix_of is None
    assert got == replace(
        read, tasks=tuple(replace(t, waiting_for=None) for t in read.tasks or ())
    )
    assert store.list_workflows()[0].params == read.params
    assert store.list_tasks(workflow_id=got.id)[0].matrix == first.matrix
    claim = store.claim_attempt("r1", [])
    assert claim is not None and claim.env["BRANCH"] == "main"
    plain = store.submit_workflow(wf(t("x"), name="plain"))
    assert store.get_workflow(plain.id).params == {}


def test_attempts_of_a_plain_workflow_are_unchanged(store: SqlStore) -> None:
    """A workflow without run_if tasks: the same results as before run_if existed."""
    wid = store.submit_workflow(wf(t("a"), t("b", "a"), t("c", "b"), t("d"))).id
    assert run(store, BAD) == "a"
    assert states(store, wid)["c"] == UPSTREAM
    ack = store.report_result(_claimed(store).attempt_id, OK)
    assert ack.attempt_status == AttemptStatus.COMPLETED
    assert store.get_workflow(wid).state == WorkflowState.FAILED


def _claimed(store: SqlStore) -> Claim:
    claim = store.claim_attempt("r1", [])
    assert claim is not None
    return claim
