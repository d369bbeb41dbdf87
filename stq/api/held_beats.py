"""Heartbeats held open, so that a runner learns of a cancel at once.

A runner that sends ``{"wait": S}`` with its heartbeat gets the answer after
``S`` seconds, or as soon as its command must stop (its workflow was
cancelled, another attempt finished its task) or its attempt ended. That is
how a cancel reaches a busy runner within a second without a heartbeat every
second from every runner: a thousand busy runners send one request each per
heartbeat interval, and the server checks all their attempts in one query,
only when the store changed, at most every ``CHECK_INTERVAL``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Seconds between two checks of the held attempts while the store keeps changing.
CHECK_INTERVAL = 0.05
#: Seconds after which the held attempts are checked even if the store did not change.
RECHECK_INTERVAL = 1.0


@dataclass(eq=False)
class _Held:
    attempt_id: str
    done: threading.Event = field(default_factory=threading.Event)
    cancel: bool = False


class HeldBeats:
    """Holds heartbeats; one thread per process answers those whose attempt must stop."""

    def __init__(
        self,
        stopping: Callable[[list[str]], dict[str, bool]],
        marker: Callable[[], object],
    ):
        """``stopping(ids)``: of these attempts, those to answer now (ended, or their
        command must stop), each with whether it must stop."""
        self._stopping = stopping
        self._marker = marker
        self._cond = threading.Condition()
        self._held: dict[str, list[_Held]] = {}
        self._pid: int | None = None

    def hold(self, attempt_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; whether the attempt's command must stop."""
        held = _Held(attempt_id)
        with self._cond:
            if self._pid != os.getpid():  # one thread per process, started by the first hold
                self._pid = os.getpid()
                self._held = {}
                threading.Thread(target=self._run, name="stq-held-beats", daemon=True).start()
            self._held.setdefault(attempt_id, []).append(held)
            self._cond.notify()
        held.done.wait(timeout)
        with self._cond:
            waiting = self._held.get(attempt_id, [])
            if held in waiting:
                waiting.remove(held)
                if not waiting:
                    del self._held[attempt_id]
        return held.cancel

    def _run(self) -> None:
        seen: object = None
        checked = 0.0
        while True:
            with self._cond:
                while not self._held:
                    self._cond.wait()
                ids = list(self._held)
            try:
                marker = self._marker()
                if marker != seen or time.monotonic() - checked >= RECHECK_INTERVAL:
                    seen, checked = marker, time.monotonic()
                    self._answer(self._stopping(ids))
            except Exception:  # the store is down: the held beats end at their own time
                seen = None
            time.sleep(CHECK_INTERVAL)

    def _answer(self, stopping: dict[str, bool]) -> None:
        with self._cond:
            for attempt_id, cancel in stopping.items():
                for held in self._held.pop(attempt_id, []):
                    held.cancel = cancel
                    held.done.set()
