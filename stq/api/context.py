"""``Context``: what every resource of the API shares in one process.

Settings, the store (opened lazily, once per forked worker), the claim desk
where long polls wait, held heartbeats and the claim latency histogram. It is
its own module so that resources can name it without importing the app that
routes to them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from stq.api.claim_desk import SEE_EVERY, ClaimDesk
from stq.api.held_beats import HeldBeats
from stq.api.histogram import Histogram
from stq.errors import StoreUnavailable, StqError
from stq.model import Claim
from stq.settings import Settings
from stq.store.base import Store

Clock = Callable[[], float]


class LazyStore:
    """Opens the store on first use in each process (re-opens after a fork)."""

    def __init__(self, settings: Settings, store: Store | None, clock: Clock | None):
        self._settings = settings
        self._clock = clock
        self._store = store
        self._pid = os.getpid() if store is not None else None
        self._lock = threading.Lock()

    def get(self) -> Store:
        if self._store is not None and self._pid == os.getpid():
            return self._store
        with self._lock:
            if self._store is None or self._pid != os.getpid():
                self._store = self._open()
                self._pid = os.getpid()
            return self._store

    def _open(self) -> Store:
        from stq.store import open_store  # here: building the app loads no store

        kwargs: dict[str, object] = {"heartbeat_timeout": self._settings.heartbeat_timeout}
        if self._clock is not None:
            kwargs["clock"] = self._clock
        try:
            return open_store(self._settings.db, **kwargs)
        except StqError:
            raise
        except Exception as exc:  # an unreadable path, a refused connection...
            raise StoreUnavailable(f"Cannot open the store {self._settings.db!r}: {exc}") from exc


@dataclass
class Context:
    """What every resource needs: settings, the store, the per-process claim metrics."""

    settings: Settings
    stores: LazyStore
    claim_latency: Histogram = field(default_factory=Histogram)
    #: Bumped after each successful write request handled by this process.
    local_changes: int = 0
    desk: ClaimDesk = field(init=False)
    held_beats: HeldBeats = field(init=False)

    def __post_init__(self) -> None:
        self.desk = ClaimDesk(
            look=lambda: self.store.offer(),
            claim=self.claim_batch,
            marker=self.marker,
            see=lambda runners: self.store.see_runners(runners),
            # A runner waiting in a long poll must never read as gone.
            see_every=min(SEE_EVERY, self.settings.heartbeat_timeout / 3),
        )
        self.held_beats = HeldBeats(
            stopping=lambda ids: self.store.stopping(ids), marker=self.marker
        )

    @property
    def store(self) -> Store:
        return self.stores.get()

    def marker(self) -> object:
        """What a long poll compares: the store's marker and this process's own writes.

        The store's marker may only see *other* connections' commits; a write
        handled by a sibling thread of this process must wake waiters too.
        """
        return (self.store.change_marker(), self.local_changes)

    def claim_batch(self, runners: list[str], labels: Collection[str]) -> list[Claim]:
        """Claims for several waiting runners in one transaction (the claim desk's), timed.

        Each runner served waited for the whole batch, so each counts its time
        in the claim latency histogram; a batch that found nothing counts once.
        """
        started = time.perf_counter()
        claims = self.store.claim_attempts(runners, labels)
        spent = time.perf_counter() - started
        for _ in claims or [None]:
            self.claim_latency.observe(spent)
        return claims
