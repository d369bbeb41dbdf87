"""Waiting claims, served by one thread per server process.

A runner with nothing to do waits in its claim (a long poll). If every waiting
request looked for work itself each time the store changed, one change would
cost a claim query per waiting runner, and a few hundred idle runners would
keep the server busy finding nothing. So waiting requests queue here instead,
grouped by their label set, and one thread per process (the desk) watches the
store's change marker. When the marker moves, when a waiter arrives, or every
``RETRY_INTERVAL`` (time alone makes work claimable: a ``retry_delay``
passing, an attempt expiring), the desk asks the store once which label sets
have claimable work (``Store.offer``) and claims only for the groups that fit,
oldest waiter first, until a claim comes back empty. A change that makes k
tasks claimable costs about k claims per process, however many runners wait,
and a change that makes nothing claimable costs one look.

Before claiming for a waiter the desk checks that its runner is still
connected: one stopped during its poll gets nothing, so no attempt is started
that nobody will run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stq.model import Claim, Offer
from stq.store.runners import Notes

#: Seconds between two reads of the store's change marker while runners wait.
POLL_INTERVAL = 0.005
#: Seconds after which the desk looks again even if the marker did not move.
RETRY_INTERVAL = 0.5
#: Seconds to wait after the store failed before looking again.
FAILURE_PAUSE = 0.5
#: Waiters of one label set claimed for in one transaction (one commit for many claims).
BATCH = 32
#: Seconds between two notes of every waiting runner as heard from.
SEE_EVERY = 10.0

Labels = frozenset[str]


@dataclass(eq=False)
class Waiter:
    """One waiting claim; its request thread sleeps on ``done``."""

    runner: str
    labels: Labels
    deadline: float
    #: The runner's socket, when the server hands it over (``gunicorn.socket``).
    client: Any = None
    done: threading.Event = field(default_factory=threading.Event)
    #: The desk is claiming for this waiter: only the desk may end it now.
    taken: bool = False
    claim: Claim | None = None
    error: BaseException | None = None

    def finish(self, claim: Claim | None = None, error: BaseException | None = None) -> None:
        self.claim, self.error = claim, error
        self.done.set()

    def outcome(self) -> Claim | None:
        if self.error is not None:
            raise self.error
        return self.claim


class ClaimDesk:
    """Queues waiting claims by label set and claims for those that fit (one thread)."""

    def __init__(
        self,
        look: Callable[[], Offer],
        claim: Callable[[list[str], Labels], list[Claim]],
        marker: Callable[[], object],
        see: Callable[[list[tuple[str, Labels]]], None],
        see_every: float = SEE_EVERY,
    ):
        """``see`` notes waiting runners as heard from (the runners view), in one
        write: each on arrival unless it was noted less than ``see_every`` seconds
        ago (a busy runner waits briefly between tasks, and a write each time would
        cost a commit per task), and all again every ``see_every`` seconds while
        they wait, so a long poll never reads as a runner gone."""
        self._look = look
        self._claim = claim
        self._marker = marker
        self._see = see
        self._see_every = see_every
        self._cond = threading.Condition()
        self._groups: dict[Labels, deque[Waiter]] = {}
        self._arrived: list[Waiter] = []  # not yet noted as seen
        self._notes = Notes(see_every)  # who was noted lately, waiting or not
        self._news = False  # a waiter arrived or this process wrote: look now
        self._pid: int | None = None

    def wait(
        self, runner: str, labels: Labels, timeout: float, client: Any = None
    ) -> Claim | None:
        """Queue a claim for up to ``timeout`` seconds; the claim the desk made, or None."""
        waiter = Waiter(runner, labels, time.monotonic() + timeout, client)
        with self._cond:
            self._start_if_needed()
            self._groups.setdefault(labels, deque()).append(waiter)
            self._arrived.append(waiter)
            self._news = True
            self._cond.notify()
        while not waiter.done.wait(max(0.0, waiter.deadline - time.monotonic())):
            with self._cond:
                if not waiter.taken:
                    self._drop(waiter)
                    return None
            # The desk is claiming for it right now: the outcome is a moment away.
            waiter.done.wait(RETRY_INTERVAL)
        return waiter.outcome()

    def heard_from(self, runner: str, labels: Labels) -> None:
        """A runner asked without waiting: note it for the runners view, at most every
        ``see_every`` seconds (a runner that polls often must not cost a write each time)."""
        with self._cond:
            due = self._notes.due(runner, labels)
        if due:
            self._note([(runner, labels)])

    def _note(self, runners: list[tuple[str, Labels]]) -> None:
        """Note runners as heard from; housekeeping, so a failure here fails no claim (the
        next note, seconds later, brings the runners view up to date)."""
        try:
            self._see(runners)
        except Exception:
            pass

    def nudge(self) -> None:
        """This process wrote something that may make work claimable: look now."""
        with self._cond:
            if self._groups:
                self._news = True
                self._cond.notify()

    def waiting(self) -> int:
        with self._cond:
            return sum(len(queue) for queue in self._groups.values())

    # --- the desk's thread --------------------------------------------------------

    def _start_if_needed(self) -> None:
        """One thread per process, started by the first waiter (never before a fork)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._groups = {}
        threading.Thread(target=self._run, name="stq-claim-desk", daemon=True).start()

    def _run(self) -> None:
        seen: object = None
        look_by = 0.0
        all_seen_at = time.monotonic()
        while True:
            with self._cond:
                while not self._groups:
                    self._cond.wait()
                    seen = None  # nobody watched meanwhile: look for the next arrival
                news, self._news = self._news, False
                now = time.monotonic()
                if now - all_seen_at >= self._see_every:
                    arrived = [w for queue in self._groups.values() for w in queue]
                    all_seen_at = now
                else:  # a busy runner waits briefly between tasks: note it now and then
                    arrived = [w for w in self._arrived if self._notes.due(w.runner, w.labels)]
                self._arrived = []
            try:
                if arrived:  # before the marker: this write must not read as news
                    self._note(list({w.runner: w.labels for w in arrived}.items()))
                marker = self._marker()  # before the look: a later commit moves it again
                now = time.monotonic()
                if news or marker != seen or now >= look_by:
                    seen, look_by = marker, now + RETRY_INTERVAL
                    self._serve(self._look())
            except Exception as ex:  # the store is down: tell the waiters, try again later
                self._fail_all(ex)
                time.sleep(FAILURE_PAUSE)
                seen = None
                continue
            with self._cond:
                if not self._news:
                    self._cond.wait(POLL_INTERVAL)

    def _serve(self, offer: Offer) -> None:
        with self._cond:
            fitting = [labels for labels in self._groups if offer.fits(labels)]
        for labels in fitting:
            while waiters := self._take_first(labels, BATCH):
                present = []
                for waiter in waiters:
                    if waiter.client is not None and gone(waiter.client):
                        waiter.finish()  # its runner left: it must not be given an attempt
                    else:
                        present.append(waiter)
                try:
                    claims = self._claim([w.runner for w in present], labels) if present else []
                except Exception as ex:
                    for waiter in present:
                        waiter.finish(error=ex)
                    raise
                for waiter, claim in zip(present, claims, strict=False):
                    waiter.finish(claim)
                if len(claims) < len(present):  # nothing left for these labels
                    self._put_back(present[len(claims) :])
                    break

    def _take_first(self, labels: Labels, count: int) -> list[Waiter]:
        """Up to ``count`` of the group's oldest waiters, marked as being claimed for."""
        with self._cond:
            queue = self._groups.get(labels)
            if not queue:
                return []
            taken = [queue.popleft() for _ in range(min(count, len(queue)))]
            if not queue:
                del self._groups[labels]
            for waiter in taken:
                waiter.taken = True
            return taken

    def _put_back(self, waiters: list[Waiter]) -> None:
        """Nothing was claimable for them after all: first in line again, unless their
        time is up (their request threads may not end them while they are taken)."""
        now = time.monotonic()
        with self._cond:
            for waiter in reversed(waiters):
                if now >= waiter.deadline:
                    waiter.finish()
                    continue
                waiter.taken = False
                self._groups.setdefault(waiter.labels, deque()).appendleft(waiter)

    def _drop(self, waiter: Waiter) -> None:
        queue = self._groups.get(waiter.labels)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._groups[waiter.labels]

    def _fail_all(self, error: BaseException) -> None:
        with self._cond:
            groups, self._groups = self._groups, {}
        for queue in groups.values():
            for waiter in queue:
                waiter.finish(error=error)


def gone(sock: Any) -> bool:
    """Whether the client closed its end of ``sock`` (a peek that reads end-of-stream)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: the client is still there, waiting
    except ValueError:
        return False  # a TLS socket takes no flags: it cannot be told, so claim
    except OSError:
        return True  # reset
