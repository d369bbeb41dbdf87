"""The claim desk: waiting claims cost what the work costs, not what the runners number.

The desk runs its real thread here; the store is a small in-memory stand-in
that counts what it is asked (the desk's contract with the store is three
calls: the change marker, one look, claims), so each test can say how many
queries a change cost.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from stq.api.claim_desk import ClaimDesk
from stq.errors import StoreUnavailable
from stq.model import Claim, Offer
from tests.helpers import wait_until


class Queue:
    """Claimable tasks by label set; counts looks and claims; moves its marker on change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: list[frozenset[str]] = []
        self.marker = 0
        self.looks = 0
        self.calls: list[list[str]] = []  # the runners of each claim transaction
        self.seen: list[str] = []
        self.failing = False

    def add(self, *label_sets: frozenset[str]) -> None:
        with self.lock:
            self.tasks.extend(label_sets)
            self.marker += 1

    def look(self) -> Offer:
        with self.lock:
            self.looks += 1
            if self.failing:
                raise StoreUnavailable("the store is down")
            plain = frozenset() in self.tasks
            return Offer(plain=plain, label_sets=tuple({t for t in self.tasks if t}))

    def claim(self, runners: list[str], labels: frozenset[str]) -> list[Claim]:
        """Claims for these runners in turn, one transaction, until nothing fits."""
        with self.lock:
            self.calls.append(list(runners))
            made = []
            for runner in runners:
                fits = [i for i, needed in enumerate(self.tasks) if needed <= labels]
                if not fits:
                    break
                del self.tasks[fits[0]]
                made.append(_claim(runner))
            self.marker += bool(made)
            return made

    def see(self, runners: list[tuple[str, frozenset[str]]]) -> None:
        self.seen.extend(name for name, _ in runners)


def _claim(runner: str) -> Claim:
    return Claim(
        attempt_id=f"a-{runner}",
        task_id="t1",
        workflow_id="w1",
        task_name="x",
        attempt_number=1,
        command="true",
        env={},
        cwd=None,
        duration=None,
    )


GPU = frozenset({"gpu"})
CPU = frozenset({"cpu"})


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def desk(queue: Queue) -> ClaimDesk:
    return ClaimDesk(queue.look, queue.claim, lambda: queue.marker, queue.see)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=64) as executor:
        yield executor


def test_a_claim_waits_for_work_that_comes_later(desk: ClaimDesk, queue: Queue) -> None:
    with ThreadPoolExecutor(1) as executor:
        waiting = executor.submit(desk.wait, "r1", CPU, 10.0)
        assert wait_until(lambda: desk.waiting() == 1)
        queue.add(frozenset())
        claim = waiting.result(timeout=5)
    assert claim is not None and claim.attempt_id == "a-r1"
    assert desk.waiting() == 0
    assert queue.seen == ["r1"]  # noted as heard from: the runners view lists it


def test_nothing_comes_within_the_wait(desk: ClaimDesk, queue: Queue) -> None:
    assert desk.wait("r1", CPU, 0.2) is None
    assert desk.waiting() == 0
    assert queue.calls == []  # nothing was claimable: no claim was tried


def in_line(desk: ClaimDesk, pool: ThreadPoolExecutor, count: int, wait: float) -> list[Future]:
    """``count`` waiters ``r0``, ``r1``... queued in that order (pool threads started
    together would reach the desk in any order), each waiting up to ``wait`` s."""
    waits = []
    for i in range(count):
        waits.append(pool.submit(desk.wait, f"r{i}", CPU, wait))
        wait_until(lambda n=i + 1: desk.waiting() == n, interval=0.001)
    return waits


def test_one_task_costs_one_claim_however_many_wait(
    desk: ClaimDesk, queue: Queue, pool: ThreadPoolExecutor
) -> None:
    waits = in_line(desk, pool, 50, 2.0)
    looks_before = queue.looks
    queue.add(frozenset())
    assert wait_until(lambda: desk.waiting() == 49)
    claimed = [c for w in waits if (c := w.result(timeout=5)) is not None]
    assert [c.attempt_id for c in claimed] == ["a-r0"]  # the first in line
    assert len(queue.calls) == 1  # one transaction: it claimed one and found nothing more
    assert queue.looks - looks_before < 20  # a look per change and per half second, not per waiter


def test_k_tasks_wake_k_waiters(desk: ClaimDesk, queue: Queue, pool: ThreadPoolExecutor) -> None:
    waits = in_line(desk, pool, 40, 2.0)
    queue.add(*[frozenset()] * 7)
    assert wait_until(lambda: desk.waiting() == 33)
    claimed = {c.attempt_id for w in waits if (c := w.result(timeout=5)) is not None}
    assert claimed == {f"a-r{i}" for i in range(7)}  # oldest waiters first
    assert len(queue.calls) == 1  # seven claims, one transaction


def test_waiters_whose_labels_cannot_match_are_not_asked(
    desk: ClaimDesk, queue: Queue, pool: ThreadPoolExecutor
) -> None:
    gpus = [pool.submit(desk.wait, f"gpu{i}", GPU, 1.0) for i in range(30)]
    cpu = pool.submit(desk.wait, "cpu0", CPU | GPU, 1.0)
    assert wait_until(lambda: desk.waiting() == 31)
    queue.add(CPU)
    claim = cpu.result(timeout=5)
    assert claim is not None and claim.attempt_id == "a-cpu0"
    assert queue.calls == [["cpu0"]]
    assert all(w.result(timeout=5) is None for w in gpus)
    assert queue.calls == [["cpu0"]]  # no gpu runner was ever tried


def test_a_runner_that_left_is_given_nothing(desk: ClaimDesk, queue: Queue) -> None:
    mine, theirs = socket.socketpair()
    with ThreadPoolExecutor(2) as executor:
        left = executor.submit(desk.wait, "left", CPU, 5.0, mine)
        assert wait_until(lambda: desk.waiting() == 1)
        theirs.close()  # the runner's end closes: it was stopped mid-poll
        stays = executor.submit(desk.wait, "stays", CPU, 5.0)
        assert wait_until(lambda: desk.waiting() == 2)
        queue.add(frozenset())
        assert left.result(timeout=5) is None
        claim = stays.result(timeout=5)
    mine.close()
    assert claim is not None and claim.attempt_id == "a-stays"
    assert queue.calls == [["stays"]]


def test_a_store_failure_reaches_the_waiters(desk: ClaimDesk, queue: Queue) -> None:
    queue.failing = True
    with pytest.raises(StoreUnavailable):
        desk.wait("r1", CPU, 5.0)


def test_more_waiters_than_a_batch_are_all_served(
    desk: ClaimDesk, queue: Queue, pool: ThreadPoolExecutor
) -> None:
    waits = in_line(desk, pool, 60, 2.0)
    queue.add(*[frozenset()] * 45)
    assert wait_until(lambda: desk.waiting() == 15)
    claimed = [c.attempt_id for w in waits if (c := w.result(timeout=5)) is not None]
    assert claimed == [f"a-r{i}" for i in range(45)]
    assert [len(call) for call in queue.calls][:2] == [32, 28]  # a full batch, then the rest


def test_a_busy_runner_coming_back_to_wait_is_noted_once(desk: ClaimDesk, queue: Queue) -> None:
    """Between two tasks a busy runner waits a moment; noting it each time would cost a
    commit per task, while the runners view needs it only every ``see_every`` seconds."""
    for _ in range(3):
        assert desk.wait("r1", CPU, 0.05) is None
    desk.heard_from("r1", CPU)
    assert desk.wait("r2", CPU, 0.05) is None
    assert wait_until(lambda: "r2" in queue.seen)  # the arrivals before it were taken in
    assert queue.seen == ["r1", "r2"]
