"""The runner's supervisor thread: heartbeats and deadlines, though it is not woken per task."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from stq.worker import process
from stq.worker.heartbeat import Supervisor, Watch
from tests.helpers import wait_until


def recorded(into: list) -> Callable[[str], bool]:
    """A heartbeat that notes when it was sent and never asks to cancel."""

    def beat(attempt_id: str) -> bool:
        into.append((attempt_id, time.monotonic()))
        return False

    return beat


def test_a_deadline_is_kept_though_the_thread_slept_for_a_later_heartbeat() -> None:
    beats: list = []
    supervisor = Supervisor(recorded(beats), grace=1.0)
    supervisor.start()
    first = Watch(attempt_id="a1", pgid=os.getpid(), deadline=None, interval=60)
    supervisor.watch(first)
    wait_until(lambda: supervisor._asleep_until != float("-inf"), what="the thread to sleep")
    supervisor.release(first)  # it now sleeps toward a1's heartbeat, a minute away
    with tempfile.TemporaryFile() as out:
        proc = process.start("sleep 30", os.environ, Path(tempfile.gettempdir()), out)
        second = Watch(
            attempt_id="a2", pgid=proc.pid, deadline=time.monotonic() + 0.3, interval=60
        )
        started = time.monotonic()
        supervisor.watch(second)
        returncode = proc.wait()
    supervisor.release(second)
    assert time.monotonic() - started < 5
    assert returncode < 0
    assert second.kill_reason == "duration exceeded: the command was killed"
    assert beats == []


def test_heartbeats_go_out_on_their_interval() -> None:
    beats: list = []
    supervisor = Supervisor(recorded(beats))
    supervisor.start()
    job = Watch(attempt_id="a1", pgid=os.getpid(), deadline=None, interval=0.1)
    supervisor.watch(job)
    wait_until(lambda: len(beats) >= 3, timeout=5, what="three heartbeats")
    supervisor.release(job)
    assert job.kill_reason is None
