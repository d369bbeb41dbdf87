"""The runner's background threads: deadlines, output streaming and held heartbeats,
though neither is woken per task."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from stq.errors import BadRequest
from stq.worker import process
from stq.worker.heartbeat import FIRST_BEAT, STREAM_EVERY, Beater, Supervisor, Watch, stream
from tests.helpers import wait_until


def test_a_deadline_is_kept_though_the_thread_slept_for_a_later_need() -> None:
    supervisor = Supervisor(grace=1.0)
    supervisor.start()
    first = Watch(attempt_id="a1", pgid=os.getpid(), deadline=None, interval=60)
    supervisor.watch(first)
    wait_until(lambda: supervisor._asleep_until != float("-inf"), what="the thread to sleep")
    supervisor.release(first)  # it now sleeps with nothing to do
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


def test_output_is_streamed_while_the_command_prints() -> None:
    posts: list[tuple[str, int, float]] = []

    def post(attempt_id: str, text: str, offset: int) -> bool:
        posts.append((text, offset, time.monotonic()))
        return False

    supervisor = Supervisor(post)
    supervisor.start()
    with tempfile.TemporaryFile() as out:
        command = "echo one; sleep 1.5; printf 'two é'; sleep 1.5"
        proc = process.start(command, os.environ, Path(tempfile.gettempdir()), out)
        job = Watch("a1", proc.pid, None, 60, out_fd=out.fileno())
        started = time.monotonic()
        supervisor.watch(job)
        wait_until(lambda: len(posts) >= 2, timeout=10, what="two posts")
        proc.wait()
        supervisor.release(job)
    assert [(text, offset) for text, offset, _ in posts[:2]] == [("one\n", 0), ("two é", 4)]
    assert posts[0][2] - started < STREAM_EVERY + 0.5  # within about a second of printing
    assert job.sent == len("one\ntwo é".encode())


def test_a_command_that_prints_nothing_sends_nothing() -> None:
    posts: list = []
    supervisor = Supervisor(lambda *args: posts.append(args) or False)
    supervisor.start()
    with tempfile.TemporaryFile() as out:
        proc = process.start("sleep 2.2", os.environ, Path(tempfile.gettempdir()), out)
        job = Watch("a1", proc.pid, None, 60, out_fd=out.fileno())
        supervisor.watch(job)
        proc.wait()
        supervisor.release(job)
    assert posts == []


def test_a_split_character_waits_for_its_last_bytes() -> None:
    with tempfile.TemporaryFile() as out:
        out.write("aé".encode()[:-1])  # 'a' and the first byte of 'é'
        out.flush()
        job = Watch("a1", os.getpid(), None, 60, out_fd=out.fileno())
        got: list[tuple[str, int]] = []
        stream(job, lambda _, text, offset: got.append((text, offset)) or False, final=False)
        out.write("é".encode()[-1:])
        out.flush()
        stream(job, lambda _, text, offset: got.append((text, offset)) or False, final=False)
    assert got == [("a", 0), ("é", 1)]


def test_held_heartbeats_start_after_a_second_and_stop_the_command() -> None:
    asked: list[tuple[str, float, float]] = []
    stop = threading.Event()

    def heartbeat(attempt_id: str, wait: float) -> bool:
        asked.append((attempt_id, wait, time.monotonic()))
        return stop.wait(wait)  # held by the server, answered at once on cancel

    stopped: list[Watch] = []
    beater = Beater(heartbeat, stopped.append)
    beater.start()
    job = Watch("a1", os.getpid(), None, interval=5.0)
    beater.watch(job)
    wait_until(lambda: asked, timeout=5, what="a held heartbeat")
    assert asked[0][1] == 5.0 and asked[0][2] - job.started >= FIRST_BEAT - 0.05
    stop.set()  # the cancel, while the heartbeat is held
    wait_until(lambda: stopped == [job], timeout=1, what="the stop")
    beater.release(job)


def test_a_short_attempt_sends_no_heartbeat() -> None:
    asked: list = []
    beater = Beater(lambda *args: asked.append(args) or False, lambda job: None)
    beater.start()
    job = Watch("a1", os.getpid(), None, interval=5.0)
    beater.watch(job)
    time.sleep(0.5)  # the attempt's whole life: shorter than FIRST_BEAT
    beater.release(job)
    time.sleep(FIRST_BEAT)  # nothing is sent for it afterwards either
    assert asked == []


def test_a_server_that_refuses_held_heartbeats_gets_plain_ones() -> None:
    asked: list[float] = []

    def heartbeat(attempt_id: str, wait: float) -> bool:
        asked.append(wait)
        raise BadRequest("unknown field 'wait'")  # an older server refuses both kinds here

    beater = Beater(heartbeat, lambda job: None)
    job = Watch("a1", os.getpid(), None, interval=0.2)
    assert beater._beat(job) is False  # one line in the log, no endless retry
    assert asked == [0.2, 0.0]
    assert beater._beat(job) is False and asked == [0.2, 0.0, 0.0]


def test_the_beater_is_woken_once_for_many_short_attempts() -> None:
    beater = Beater(lambda *args: False, lambda job: None)
    woken: list[int] = []
    notify = beater._cond.notify
    beater._cond.notify = lambda n=1: (woken.append(n), notify(n))  # type: ignore[method-assign]
    beater.start()
    wait_until(lambda: beater._asleep_until == float("inf"), what="the idle beater to sleep")
    job = Watch("a0", os.getpid(), None, interval=5.0)
    beater.watch(job)  # it slept with nothing to do: this one wakes it
    wait_until(lambda: 0 < beater._asleep_until < float("inf"), what="a timed sleep")
    for number in range(1, 50):  # a busy runner's attempts, each due later than that sleep
        beater.release(job)
        job = Watch(f"a{number}", os.getpid(), None, interval=5.0)
        beater.watch(job)
    beater.release(job)
    # One wake-up; a second only if a loaded machine made the loop outlast that sleep and
    # the thread, finding no attempt, slept with nothing to do. Never one per attempt.
    assert len(woken) <= 2


def test_an_attempt_after_a_long_one_gets_its_first_heartbeat_on_time() -> None:
    asked: list[tuple[str, float]] = []
    beater = Beater(lambda attempt_id, wait: asked.append((attempt_id, time.monotonic())) or False,
                    lambda job: None)  # fmt: skip
    beater.start()
    long = Watch("long", os.getpid(), None, interval=30.0)
    beater.watch(long)
    wait_until(lambda: asked, timeout=5, what="the long attempt's heartbeat")
    beater.release(long)  # the beater rests until the long attempt's next beat, 30 s away
    short = Watch("next", os.getpid(), None, interval=30.0)
    beater.watch(short)
    wait_until(lambda: len(asked) == 2, timeout=5, what="the next attempt's first heartbeat")
    assert asked[1][0] == "next" and asked[1][1] - short.started < FIRST_BEAT + 1
    beater.release(short)
