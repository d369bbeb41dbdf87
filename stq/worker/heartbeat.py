"""The runner's one background thread: heartbeats, the duration deadline, kills.

One thread lives as long as the runner (no thread per attempt): the main
thread hands it the running ``Watch`` and blocks in ``wait()`` on the child,
costing no CPU. This thread wakes only at the next heartbeat or deadline, or
when told to kill; it then kills the command's process group itself, so a
cancel, an overrun or a second Ctrl-C all end the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stq.errors import StqError
from stq.worker.process import KILL_GRACE, kill_group

log = logging.getLogger("stq.worker")


@dataclass
class Watch:
    """One running attempt as the supervisor sees it."""

    attempt_id: str
    pgid: int
    deadline: float | None  # monotonic seconds, or None for no duration
    interval: float
    next_beat: float = 0.0
    #: Set once: why the command is being killed (also what the result says).
    kill_reason: str | None = None
    #: The supervisor has started killing (so ``killed`` will be set).
    taken: bool = False
    exited: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.next_beat = time.monotonic() + self.interval


class Supervisor(threading.Thread):
    """Heartbeats the watched attempt and kills it on cancel, overrun or request."""

    def __init__(self, heartbeat: Callable[[str], bool], grace: float = KILL_GRACE):
        super().__init__(name="stq-supervisor", daemon=True)
        self._heartbeat = heartbeat
        self._grace = grace
        self._cond = threading.Condition()
        self._watch: Watch | None = None
        #: When this thread's current wait ends (-inf while it is awake, inf for no end).
        self._asleep_until = float("-inf")

    def watch(self, job: Watch) -> None:
        """Watch ``job``; wake this thread only if it would otherwise sleep past the job's needs.

        Most attempts end long before their first heartbeat: not waking the thread
        for each saves a thread switch per task on a busy runner.
        """
        with self._cond:
            self._watch = job
            if _wake_time(job) < self._asleep_until:
                self._cond.notify()

    def release(self, job: Watch) -> None:
        """The attempt's leader exited: wait for any kill in progress, then forget it."""
        job.exited.set()
        with self._cond:
            if self._watch is job:
                self._watch = None
            taken = job.taken
        if taken:
            job.killed.wait(self._grace + 5)

    def kill(self, reason: str) -> None:
        """Kill the current attempt's command (e.g. on a second Ctrl-C)."""
        with self._cond:
            if self._watch is not None and self._watch.kill_reason is None:
                self._watch.kill_reason = reason
                self._cond.notify()

    def run(self) -> None:
        while True:
            job, due = self._next()
            if job.kill_reason is not None:
                kill_group(job.pgid, job.exited, self._grace)
                job.killed.set()
                self._forget(job)
            elif "beat" in due:
                self._beat(job)

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
                if now >= job.next_beat:
                    job.next_beat = now + job.interval
                    return job, "beat"
                self._sleep(_wake_time(job) - now)

    def _sleep(self, seconds: float | None) -> None:
        """Wait on the condition (its lock held) for ``seconds``, or until notified."""
        self._asleep_until = float("inf") if seconds is None else time.monotonic() + seconds
        try:
            self._cond.wait(seconds)
        finally:
            self._asleep_until = float("-inf")

    def _forget(self, job: Watch) -> None:
        with self._cond:
            if self._watch is job:
                self._watch = None

    def _beat(self, job: Watch) -> None:
        try:
            cancel = self._heartbeat(job.attempt_id)
        except StqError as ex:
            log.debug("heartbeat for %s failed: %s", job.attempt_id, ex)
            return
        if cancel:
            self.kill("cancelled: the server asked to stop the command")


def _wake_time(job: Watch) -> float:
    """When the supervisor must next look at ``job``: its next heartbeat or its deadline."""
    return job.next_beat if job.deadline is None else min(job.next_beat, job.deadline)
