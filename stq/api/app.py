"""``create_app``: the Falcon WSGI app, its routes, guards and error handler.

Importing this module does no I/O. The store is opened lazily, on the first
request in each process: gunicorn imports the app once and then forks its
workers, and a database connection must never be shared across a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon

from stq.api import attempts, errors, health, openapi, runners, static, tasks, workflows
from stq.api.claim_desk import SEE_EVERY, ClaimDesk
from stq.api.guards import Guard
from stq.api.held_beats import HeldBeats
from stq.errors import StoreUnavailable, StqError
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
        from stq.store import open_store  # here, not at import: keeps `import stq.api` cheap

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
    claim_latency: health.Histogram = field(default_factory=health.Histogram)
    #: Bumped after each successful write request handled by this process.
    local_changes: int = 0
    desk: ClaimDesk = field(init=False)
    held_beats: HeldBeats = field(init=False)

    def __post_init__(self) -> None:
        claimer = attempts.Claimer(self)
        self.desk = ClaimDesk(
            look=lambda: self.store.offer(),
            claim=claimer.batch,
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


#: Writes that never make a task claimable.
_QUIET = ("/claim", "/heartbeat", "/output")


class LocalChanges:
    """Middleware: count this process's successful writes for waiting claims."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req_succeeded and req.method in ("POST", "DELETE") and not req.path.endswith(_QUIET):
            self.ctx.local_changes += 1  # a lost race only delays a waiter by one poll
            self.ctx.desk.nudge()


class StqApp(falcon.App):
    """Falcon's app, holding its context so that a server can warm it up."""

    def __init__(self, ctx: Context, **kwargs: Any):
        super().__init__(**kwargs)
        self.ctx = ctx

    def warm_up(self) -> None:
        """Open this process's store before the first request asks for it.

        Called by ``stq server``'s worker once it has forked and loaded the app:
        otherwise the first request each worker serves waits for the store's
        modules and connection (tens of milliseconds). A store that cannot be
        opened yet is left for the requests to report.
        """
        try:
            self.ctx.store.check()
        except StqError:
            pass


def create_app(settings: Settings, store: Store | None = None, clock: Clock | None = None):
    """The WSGI app; ``store``/``clock`` are injected by tests, else opened from settings."""
    ctx = Context(settings, LazyStore(settings, store, clock))
    app = StqApp(ctx, middleware=[Guard(settings), LocalChanges(ctx)])
    app.req_options.strip_url_path_trailing_slash = True
    app.add_error_handler(Exception, errors.handle)
    app.add_error_handler(falcon.HTTPError, errors.handle)
    routes = [
        *workflows.routes(ctx),
        *tasks.routes(ctx),
        *attempts.routes(ctx),
        *runners.routes(ctx),
        *health.routes(ctx),
        ("/api/v1/openapi.json", openapi.OpenApiResource()),
        *static.routes(),
    ]
    for template, resource, *rest in routes:
        app.add_route(template, _with_head(resource), *rest)
    return app


def _with_head(resource: object) -> object:
    """HEAD answers as GET does, without the body (falcon drops it, keeps Content-Length)."""
    on_get = getattr(resource, "on_get", None)
    if on_get is not None and not hasattr(resource, "on_head"):
        resource.on_head = on_get  # type: ignore[attr-defined]
    return resource
