"""``create_app``: the Falcon WSGI app, its routes, guards and error handler.

Importing this module does no I/O. The store is opened lazily, on the first
request in each process: gunicorn imports the app once and then forks its
workers, and a database connection must never be shared across a fork.
"""

from __future__ import annotations

from typing import Any

import falcon

from stq.api import attempts, errors, health, openapi, runners, static, tasks, workflows
from stq.api.context import Clock, Context, LazyStore
from stq.api.guards import Guard
from stq.errors import StqError
from stq.settings import Settings
from stq.store.base import Store

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
