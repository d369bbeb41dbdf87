"""``/api/v1/workflows``: submit, list, read, cancel, retry, delete."""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING

import falcon

from stq.api import render
from stq.api.bodies import read_document
from stq.api.query import bool_param, enum_param, int_param
from stq.errors import BadRequest
from stq.gc_pause import gc_paused
from stq.loader import load_workflow_document
from stq.model import IDEMPOTENCY_HEADER, WorkflowState
from stq.store.base import Idempotency

if TYPE_CHECKING:
    from stq.api.context import Context

MAX_PAGE = 1000
#: 1-200 visible ASCII characters: no spaces, so a key reads the same in any log.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key(req: falcon.Request) -> str | None:
    """The ``Idempotency-Key`` header (absent: None); anything but 1-200 visible ASCII is a 400."""
    key = req.get_header(IDEMPOTENCY_HEADER)
    if key is None or _IDEMPOTENCY_KEY.fullmatch(key):
        return key
    allowed = "1 to 200 visible ASCII characters (0x21-0x7E: no spaces or control characters)"
    found = f"{len(key)} characters" if not 1 <= len(key) <= 200 else "a character not allowed"
    raise BadRequest(
        f"The {IDEMPOTENCY_HEADER} header must be {allowed}.",
        [{"path": IDEMPOTENCY_HEADER, "message": f"it has {found}"}],
    )


def store_now(ctx: Context) -> float:
    """The store's time (tests inject a clock), which its tasks' ``started`` is in."""
    clock = getattr(ctx.store, "clock", time.time)
    return clock()


class WorkflowsResource:
    """The collection: submit a document, list newest first."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Submit; with an ``Idempotency-Key``, a repeat answers 200 with the first workflow."""
        key = idempotency_key(req)  # a bad key is refused before the body is read
        with gc_paused():  # a 100,000-task body is millions of objects and no cycles
            document, body = read_document(req)
            spec = load_workflow_document(document)
            if key is None:
                stored, created = self.ctx.store.submit_workflow(spec), True
            else:
                # Over the raw bytes: a client's retry sends exactly the same bytes again.
                once = Idempotency(key, hashlib.sha256(body).hexdigest())
                stored, created = self.ctx.store.submit_workflow(spec, once)
            resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
            resp.location = f"/api/v1/workflows/{stored.id}"
            resp.media = render.submitted(stored)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = int_param(req, "limit", 100, 1, MAX_PAGE)
        before = req.get_param("before") or None
        state = enum_param(req, "state", WorkflowState)
        found = self.ctx.store.list_workflows(limit=limit, before=before, state=state)
        resp.media = {"workflows": [render.workflow(w) for w in found]}


class WorkflowResource:
    """One workflow with every task; DELETE forgets a terminal one.

    Extension: ``?tasks=false`` answers the summary alone (as in the list), for
    clients that follow a big workflow's progress (``stq run``, ``submit --wait``).
    Extension: with its tasks, the answer carries ``time_left`` (see ``estimate``).
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        with_tasks = bool_param(req, "tasks", default=True)
        found = self.ctx.store.get_workflow(workflow_id, with_tasks)
        resp.media = render.workflow_read(found, store_now(self.ctx))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        self.ctx.store.delete_workflow(workflow_id)
        resp.media = {"id": workflow_id, "deleted": True}


class CancelResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        found = self.ctx.store.cancel_workflow(workflow_id)
        resp.media = render.workflow_read(found, store_now(self.ctx))


class RetryResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, workflow_id: str) -> None:
        found = self.ctx.store.retry_workflow(workflow_id)
        resp.media = render.workflow_read(found, store_now(self.ctx))


def routes(ctx: Context) -> list[tuple[str, object]]:
    return [
        ("/api/v1/workflows", WorkflowsResource(ctx)),
        ("/api/v1/workflows/{workflow_id}", WorkflowResource(ctx)),
        ("/api/v1/workflows/{workflow_id}/cancel", CancelResource(ctx)),
        ("/api/v1/workflows/{workflow_id}/retry", RetryResource(ctx)),
    ]
