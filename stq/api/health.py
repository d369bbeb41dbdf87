"""``/api/v1/health`` and ``/metrics`` (Prometheus text exposition format 0.0.4).

Task and attempt counts come from the store, so every process reports the
same totals. Claim latency is a histogram kept in memory *per process*: with
several gunicorn workers each scrape sees one worker's claims (Prometheus
users aggregate across scrapes; a shared store-backed histogram is not worth
a write per claim).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stq.model import AttemptStatus, TaskState

if TYPE_CHECKING:
    from stq.api.context import Context

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _gauge(name: str, help_text: str, label: str, values: dict[str, int]) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    out += [f'{name}{{{label}="{key}"}} {value}' for key, value in values.items()]
    return out


def metrics_text(ctx: Context) -> str:
    found = ctx.store.metrics()
    tasks = {s.value: int(found.tasks.get(s.value, 0)) for s in TaskState}
    attempts = {s.value: int(found.attempts.get(s.value, 0)) for s in AttemptStatus}
    lines = _gauge("stq_tasks", "Tasks in the store by state.", "state", tasks)
    lines += _gauge("stq_attempts", "Attempts in the store by status.", "status", attempts)
    lines += [
        "# HELP stq_claim_latency_seconds Server time of one claim try, with its result "
        "when claimed by one (this process only).",
        "# TYPE stq_claim_latency_seconds histogram",
        *ctx.claim_latency.lines("stq_claim_latency_seconds"),
    ]
    return "\n".join(lines) + "\n"


class HealthResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.ctx.store.check()  # raises StoreUnavailable -> 503 with the error body
        resp.media = {"ok": True}


class MetricsResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = PROMETHEUS_TEXT
        resp.text = metrics_text(self.ctx)


def routes(ctx: Context) -> list[tuple[str, object]]:
    return [("/api/v1/health", HealthResource(ctx)), ("/metrics", MetricsResource(ctx))]
