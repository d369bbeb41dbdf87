"""``/api/v1/health`` and ``/metrics`` (Prometheus text exposition format 0.0.4).

Task and attempt counts come from the store, so every process reports the
same totals. Claim latency is a histogram kept in memory *per process*: with
several gunicorn workers each scrape sees one worker's claims (Prometheus
users aggregate across scrapes; a shared store-backed histogram is not worth
a write per claim).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import falcon

from stq.model import AttemptStatus, TaskState

if TYPE_CHECKING:
    from stq.api.app import Context

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    """A thread-safe cumulative histogram of seconds."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.total += seconds
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    self.counts[i] += 1

    def lines(self, name: str) -> list[str]:
        with self._lock:
            pairs = zip(self.buckets, self.counts, strict=True)
            out = [f'{name}_bucket{{le="{b}"}} {c}' for b, c in pairs]
            out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
            out.append(f"{name}_sum {self.total:.6f}")
            out.append(f"{name}_count {self.count}")
        return out


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
