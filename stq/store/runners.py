"""The runners view: who the servers heard from, and which of them are busy.

A runner is its name. Its row is written where a server hears from it anyway
(a claim it makes, the long polls it waits in, its heartbeats), so keeping the
view costs no request of its own. Busy is not stored: it is read from the
runner's running attempt, which the claim rules keep exact.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from stq.model import Runner, RunnerState
from stq.store import records
from stq.store.statements import named
from stq.store.tx import Tx

#: Seconds a runner stays listed after it was last heard from.
LISTED_FOR = 600.0
#: Runners a process remembers as lately noted before it forgets the old ones.
MAX_NOTES = 10_000

SEEN = named("runner_seen")
BEAT = named("runner_beat")
FORGET = named("runners_forget")
LISTED = named("runners_listed")
RUNNING = named("runners_running")


class Notes:
    """Which runners this process noted lately, so a busy runner's claims (one per task)
    write its row once every ``every`` seconds, not once per task."""

    def __init__(self, every: float):
        self.every = every
        self._noted: dict[str, tuple[frozenset[str], float]] = {}

    def due(self, name: str, labels: Collection[str]) -> bool:
        now = time.monotonic()
        have = frozenset(labels)
        last = self._noted.get(name)
        if last is not None and last[0] == have and now - last[1] < self.every:
            return False
        if len(self._noted) > MAX_NOTES:
            self._noted = {n: v for n, v in self._noted.items() if now - v[1] < self.every}
        self._noted[name] = (have, now)
        return True


def seen(tx: Tx, runners: Iterable[tuple[str, Collection[str]]]) -> None:
    """Note that each (name, labels) runner was heard from now."""
    rows = [(name, records.dump_strings(sorted(labels)), tx.now) for name, labels in runners]
    tx.many(SEEN, rows)


def beat(tx: Tx, name: str) -> None:
    """A heartbeat: the runner is alive (its labels are already known from its claim)."""
    tx.run(BEAT, (tx.now, name))


def forget_old(tx: Tx) -> None:
    tx.run(FORGET, (tx.now - LISTED_FOR,))


def listing(tx: Tx, heartbeat_timeout: float) -> list[Runner]:
    """Every runner heard from in the last ``LISTED_FOR`` seconds or still running something.

    Idle while heard from within the heartbeat timeout (a runner waiting in a
    long poll is re-noted while it waits), gone after that.
    """
    running = {row[0]: row[1:] for row in tx.all(RUNNING)}
    found = {}
    for name, labels, last_seen in tx.all(LISTED, (tx.now - LISTED_FOR,)):
        found[name] = (records.load_labels(labels), last_seen)
    for name, (_, _, heartbeat) in running.items():
        labels, last_seen = found.get(name, ((), heartbeat))
        found[name] = (labels, max(last_seen, heartbeat))
    listed = []
    for name in sorted(found):
        labels, last_seen = found[name]
        attempt = running.get(name)
        if attempt is not None:
            state = RunnerState.BUSY
        elif tx.now - last_seen <= heartbeat_timeout:
            state = RunnerState.IDLE
        else:
            state = RunnerState.GONE
        listed.append(
            Runner(
                name=name,
                labels=labels,
                state=state,
                last_seen=last_seen,
                attempt_id=None if attempt is None else records.make_id("a", attempt[0]),
                task_id=None if attempt is None else records.make_id("t", attempt[1]),
            )
        )
    return listed
