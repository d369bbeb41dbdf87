"""``/api/v1/runners``: the runners heard from in the last ten minutes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stq.api import render

if TYPE_CHECKING:
    from stq.api.context import Context


class RunnersResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"runners": [render.runner(r) for r in self.ctx.store.list_runners()]}


def routes(ctx: Context) -> list[tuple[str, object]]:
    return [("/api/v1/runners", RunnersResource(ctx))]
