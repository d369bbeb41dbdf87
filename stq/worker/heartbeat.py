"""The runner's two background threads: the supervisor and the beater.

Both live as long as the runner (no thread per attempt): the main thread
hands them the running ``Watch`` and blocks in ``wait()`` on the child.

- The supervisor keeps the duration deadline, kills the command's process
  group when asked (a cancel, an overrun, a second Ctrl-C: all end the same
  way), and streams what the command printed to the server every
  ``STREAM_EVERY`` while it prints. It wakes only for those: a command that
  ends within a second, or prints nothing, costs it nothing.
- The beater sends heartbeats held open by the server (``{"wait": interval}``):
  the server answers at once when the command must stop, so a cancel reaches
  the runner within a second, for one request per heartbeat interval. Its
  first heartbeat goes out ``FIRST_BEAT`` after the command started (or one
  interval, if shorter), so the many short attempts of a busy runner send none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stq.errors import BadRequest, Conflict, StqError
from stq.utf8 import whole_chars
from stq.worker.process import KILL_GRACE, kill_group

log = logging.getLogger("stq.worker")

#: Seconds between two looks at a running command's output (and posts of what is new).
STREAM_EVERY = 1.0
#: Bytes of output sent in one post, and at most per look (a command printing faster
#: than that is sent the rest with its result, within the 1 MiB tail rule).
STREAM_CHUNK = 1024 * 1024
STREAM_MOST = 4 * STREAM_CHUNK
#: Seconds after a command starts before its first heartbeat.
FIRST_BEAT = 1.0

CANCELLED = "cancelled: the server asked to stop the command"


@dataclass
class Watch:
    """One running attempt as the background threads see it."""

    attempt_id: str
    pgid: int
    deadline: float | None  # monotonic seconds, or None for no duration
    interval: float
    #: The file the command writes its output to (a descriptor the threads read with pread).
    out_fd: int | None = None
    #: Bytes of output the server has taken; only under ``stream_lock``.
    sent: int = 0
    stream_lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    next_stream: float = 0.0
    #: Set once: why the command is being killed (also what the result says).
    kill_reason: str | None = None
    #: The supervisor has started killing (so ``killed`` will be set).
    taken: bool = False
    exited: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.next_stream = self.started + STREAM_EVERY


class _Watcher(threading.Thread):
    """A background thread watching one attempt at a time, woken only when it must be.

    Most attempts end long before either thread needs to do anything for them:
    handing one over without waking the thread (unless it would otherwise
    sleep past the attempt's first need) saves two thread switches per task on
    a busy runner.
    """

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self._cond = threading.Condition()
        self._watch: Watch | None = None
        #: When this thread's current wait ends (-inf while it is awake, inf for no end).
        self._asleep_until = float("-inf")

    def watch(self, job: Watch) -> None:
        """Watch ``job``, waking this thread only if it sleeps past ``_wake_time(job)``."""
        with self._cond:
            self._watch = job
            if self._wake_time(job) < self._asleep_until:
                self._cond.notify()

    def _wake_time(self, job: Watch) -> float:
        """When this thread must first look at ``job`` (monotonic seconds)."""
        raise NotImplementedError

    def _sleep(self, seconds: float | None) -> None:
        """Wait on the condition (its lock held) for ``seconds``, or until notified."""
        self._asleep_until = float("inf") if seconds is None else time.monotonic() + seconds
        try:
            self._cond.wait(None if seconds is None else max(0.0, seconds))
        finally:
            self._asleep_until = float("-inf")


class Supervisor(_Watcher):
    """Keeps the watched attempt's deadline, kills it when asked, streams its output."""

    def __init__(
        self,
        post_output: Callable[[str, str, int], bool] | None = None,
        grace: float = KILL_GRACE,
    ):
        """``post_output(attempt_id, text, offset)`` sends output and answers whether to
        stop; None sends nothing while the command runs (all of it goes with the result)."""
        super().__init__("stq-supervisor")
        self._post_output = post_output
        self._grace = grace

    def release(self, job: Watch) -> None:
        """The attempt's leader exited: wait for any kill in progress, then forget it."""
        job.exited.set()
        with self._cond:
            if self._watch is job:
                self._watch = None
            taken = job.taken
        if taken:
            job.killed.wait(self._grace + 5)

    def kill(self, reason: str, job: Watch | None = None) -> None:
        """Kill the current attempt's command (only if it is still ``job``, when given)."""
        with self._cond:
            current = self._watch
            if current is not None and (job is None or current is job):
                if current.kill_reason is None:
                    current.kill_reason = reason
                    self._cond.notify()

    def run(self) -> None:
        while True:
            job, due = self._next()
            if due == "kill":
                kill_group(job.pgid, job.exited, self._grace)
                job.killed.set()
                self._forget(job)
            elif due == "stream" and self._post_output is not None:
                if stream(job, self._post_output, final=False):
                    self.kill(CANCELLED, job)

    def _next(self) -> tuple[Watch, str]:
        """Sleep until the watched attempt needs something; say what."""
        with self._cond:
            while True:
                job = self._watch
                if job is None:
                    self._sleep(None)
                    continue
                now = time.monotonic()
                if job.kill_reason is None and job.deadline is not None and now >= job.deadline:
                    job.kill_reason = "duration exceeded: the command was killed"
                if job.kill_reason is not None:
                    job.taken = True
                    return job, "kill"
                if self._post_output is not None and now >= job.next_stream:
                    job.next_stream = now + STREAM_EVERY
                    return job, "stream"
                self._sleep(self._wake_time(job) - now)

    def _wake_time(self, job: Watch) -> float:
        """When the supervisor must next look at ``job``: its next stream or its deadline."""
        stream_at = job.next_stream if self._post_output is not None else float("inf")
        return stream_at if job.deadline is None else min(stream_at, job.deadline)

    def _forget(self, job: Watch) -> None:
        with self._cond:
            if self._watch is job:
                self._watch = None


def stream(job: Watch, post: Callable[[str, str, int], bool], final: bool) -> bool:
    """Send what the command printed since ``job.sent``; whether the server said to stop.

    Text is cut at a character boundary (the rest of a character goes with the
    next post) unless ``final``. A post that fails leaves ``sent`` where it was:
    the next one sends the same bytes again, and the server skips what it has.
    """
    if job.out_fd is None:
        return False
    with job.stream_lock:
        size = os.fstat(job.out_fd).st_size
        stop = False
        most = job.sent + STREAM_MOST
        while job.sent < min(size, most):
            data = os.pread(job.out_fd, min(STREAM_CHUNK, size - job.sent), job.sent)
            if not final:
                data = data[: whole_chars(data)]
            if not data:
                break
            try:
                stop = post(job.attempt_id, data.decode("utf-8", errors="replace"), job.sent)
            except Conflict as ex:  # the server lacks earlier bytes: the result sends the tail
                log.debug("output for %s refused: %s", job.attempt_id, ex)
                break
            except StqError as ex:
                log.debug("output for %s not sent: %s", job.attempt_id, ex)
                break
            job.sent += len(data)
            if stop:
                break
        return stop


class Beater(_Watcher):
    """Sends the watched attempt's heartbeats, held open so that a cancel comes at once."""

    def __init__(self, heartbeat: Callable[[str, float], bool], on_stop: Callable[[Watch], None]):
        """``heartbeat(attempt_id, wait)`` answers whether the command must stop;
        ``on_stop(job)`` is called when it must."""
        super().__init__("stq-beater")
        self._heartbeat = heartbeat
        self._on_stop = on_stop
        self._holds = True  # the server honours held heartbeats (an older one refuses `wait`)

    def release(self, job: Watch) -> None:
        """Forget ``job``. The thread is not woken: wherever it sleeps, it looks at the
        attempt watched by then when it wakes, and a new one wakes it if due sooner."""
        with self._cond:
            if self._watch is job:
                self._watch = None

    def run(self) -> None:
        while True:
            job = self._due()
            sent = time.monotonic()
            if self._beat(job):
                self._on_stop(job)
            self._rest(job, sent + job.interval)

    def _wake_time(self, job: Watch) -> float:
        return job.started + min(FIRST_BEAT, job.interval)

    def _rest(self, job: Watch, until: float) -> None:
        """Until ``job`` is no longer watched or ``until``: a server that answered early
        for no reason (one that cannot hold) is not asked again before the interval."""
        with self._cond:
            while self._watch is job and (left := until - time.monotonic()) > 0:
                self._sleep(left)

    def _due(self) -> Watch:
        """The watched attempt, once its first heartbeat is due."""
        with self._cond:
            while True:
                job = self._watch
                if job is None:
                    self._sleep(None)
                    continue
                wait = self._wake_time(job) - time.monotonic()
                if wait <= 0:
                    return job
                self._sleep(wait)

    def _beat(self, job: Watch) -> bool:
        try:
            return self._heartbeat(job.attempt_id, job.interval if self._holds else 0.0)
        except BadRequest as ex:
            if not self._holds:
                log.debug("heartbeat for %s refused: %s", job.attempt_id, ex)
                return False
            self._holds = False  # a server that knows no held heartbeats: plain ones from now on
            return self._beat(job)
        except StqError as ex:
            log.debug("heartbeat for %s failed: %s", job.attempt_id, ex)
            return False
