"""The worker class's parts: ``ElasticPool`` (threads on demand, never a job behind a long one,
threads end when idle) and the cork that sends an answer in one segment."""

from __future__ import annotations

import socket
import threading

from stq.api.serving import ElasticPool, _cork
from tests.helpers import wait_until


def test_a_job_never_waits_behind_a_long_one_while_threads_are_left() -> None:
    pool = ElasticPool(max_threads=10, idle=0.2)
    release = threading.Event()
    long_ones = [pool.submit(release.wait, 30) for _ in range(5)]
    quick = pool.submit(lambda: "done")
    assert quick.result(timeout=5) == "done"
    release.set()
    assert all(f.result(timeout=5) for f in long_ones)
    pool.shutdown()


def test_past_the_limit_jobs_wait_for_the_first_free_thread() -> None:
    pool = ElasticPool(max_threads=2, idle=0.2)
    release = threading.Event()
    held = [pool.submit(release.wait, 30) for _ in range(2)]
    queued = [pool.submit(lambda i=i: i) for i in range(3)]
    assert not any(f.done() for f in queued)
    release.set()
    assert [f.result(timeout=5) for f in queued] == [0, 1, 2]
    assert all(f.result(timeout=5) for f in held)
    after = pool.submit(lambda: "again")  # the count of idle threads is still right
    assert after.result(timeout=5) == "again"
    pool.shutdown()


def test_idle_threads_end_and_come_back_on_demand() -> None:
    before = set(threading.enumerate())
    pool = ElasticPool(max_threads=50, idle=0.2)
    release = threading.Event()
    burst = [pool.submit(release.wait, 30) for _ in range(20)]
    started = set(threading.enumerate()) - before
    assert pool.threads == 20 and len(started) == 20
    release.set()
    assert all(f.result(timeout=5) for f in burst)
    wait_until(lambda: pool.threads == 0, timeout=5, what="idle threads to end")
    wait_until(lambda: not any(t.is_alive() for t in started), timeout=5, what="threads gone")
    assert pool.submit(lambda: 7).result(timeout=5) == 7
    pool.shutdown()


def test_an_exception_reaches_the_future() -> None:
    pool = ElasticPool(max_threads=1)
    failing = pool.submit(lambda: 1 / 0)
    assert isinstance(failing.exception(timeout=5), ZeroDivisionError)
    pool.shutdown()


def test_an_answer_is_corked_only_while_it_is_written() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        with socket.create_connection(listener.getsockname()) as sock:
            assert _cork(sock, True) is True
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
            assert _cork(sock, False) is True
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
    left, right = socket.socketpair()  # not TCP: nothing to cork, nothing tried
    with left, right:
        assert _cork(left, True) is False
