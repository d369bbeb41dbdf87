"""``/api/v1/tasks``: the filtered list and one task with its attempts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stq.api import render
from stq.api.query import enum_param
from stq.model import TaskState

if TYPE_CHECKING:
    from stq.api.context import Context


class TasksResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        state = enum_param(req, "state", TaskState)
        workflow_id = req.get_param("workflow") or None
        found = self.ctx.store.list_tasks(state=state, workflow_id=workflow_id)
        resp.media = {"tasks": [render.task(t) for t in found]}


class TaskResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = render.task(self.ctx.store.get_task(task_id))


def routes(ctx: Context) -> list[tuple[str, object]]:
    return [
        ("/api/v1/tasks", TasksResource(ctx)),
        ("/api/v1/tasks/{task_id}", TaskResource(ctx)),
    ]
