"""``/api/v1/attempts``: claim (long poll), heartbeat, result, output.

A claim that asks to wait and finds nothing at once queues at the process's
claim desk (``stq.api.claim_desk``), which claims for it when work that fits
its labels appears.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

import falcon

from stq.api import bodies, render
from stq.model import AttemptStatus, Claim, Report
from stq.settings import MAX_CLAIM_WAIT

if TYPE_CHECKING:
    from stq.api.context import Context

T = TypeVar("T")

#: Longest claim wait where requests are not run in threads (``wsgi.multithread``
#: false, as under gunicorn's default sync worker): a long poll would hold the
#: only worker, and with it every other request, for up to 30 s.
SINGLE_THREAD_CLAIM_WAIT = 1.0


class Claimer:
    """Claims for one process: timed for /metrics, optionally waiting at the desk."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def once(self, runner: str, labels: Collection[str]) -> Claim | None:
        return self.timed(lambda: self.ctx.store.claim_attempt(runner, labels))

    def timed(self, take: Callable[[], T]) -> T:
        """``take()``, its server time recorded in the claim latency histogram."""
        started = time.perf_counter()
        taken = take()
        self.ctx.claim_latency.observe(time.perf_counter() - started)
        return taken

    def wait(
        self, runner: str, labels: list[str], wait: float, client: Any = None
    ) -> Claim | None:
        """A claim, waiting up to ``wait`` seconds; None if nothing came, or ``client`` left.

        ``client`` is the runner's socket, when the server hands it over: a
        runner stopped during its long poll must not be given an attempt it
        will never run (with ``max_attempts: 1`` its task would fail unrun).
        """
        if wait <= 0:
            claim = self.once(runner, labels)  # the common busy-runner path: no queue
            if claim is None:
                self.ctx.desk.heard_from(runner, frozenset(labels))
            return claim
        return self.ctx.desk.wait(runner, frozenset(labels), min(wait, MAX_CLAIM_WAIT), client)

    def answer(self, claim: Claim | None) -> dict[str, Any] | None:
        if claim is None:
            return None
        return render.claim(claim, self.ctx.settings.heartbeat_interval)


class ClaimResource:
    def __init__(self, ctx: Context):
        self.claimer = Claimer(ctx)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = bodies.parse(req, bodies.CLAIM)
        labels = body.get("labels", [])
        wait = float(body.get("wait", 0))
        if not req.env.get("wsgi.multithread"):
            wait = min(wait, SINGLE_THREAD_CLAIM_WAIT)
        claim = self.claimer.wait(body["runner"], labels, wait, req.env.get("gunicorn.socket"))
        if claim is None:
            resp.status = falcon.HTTP_204
            return
        resp.media = self.claimer.answer(claim)


class HeartbeatResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, attempt_id: str) -> None:
        """Record the beat; with ``wait``, answer when the command must stop or the wait
        (at most the heartbeat interval) ends, whichever comes first."""
        body = bodies.parse(req, bodies.HEARTBEAT, empty={})
        cancel = bool(self.ctx.store.heartbeat(attempt_id))
        wait = min(float(body.get("wait", 0)), self.ctx.settings.heartbeat_interval)
        if not cancel and wait > 0 and req.env.get("wsgi.multithread"):
            cancel = self.ctx.held_beats.hold(attempt_id, wait)
        resp.media = {"cancel": cancel}


class ResultResource:
    """The result; with the ``next`` extension also the runner's next claim (no waiting),
    in the same transaction: one commit per task for a busy runner."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.claimer = Claimer(ctx)

    def on_post(self, req: falcon.Request, resp: falcon.Response, attempt_id: str) -> None:
        body = bodies.parse(req, bodies.RESULT)
        report = Report(
            status=AttemptStatus(body["status"]),
            exit_code=body.get("exit_code"),
            output=body.get("output") or "",  # the store keeps the last MiB
            message=body.get("message"),
            output_offset=body.get("output_offset"),
        )
        if "next" not in body:
            resp.media = render.result_ack(self.ctx.store.report_result(attempt_id, report))
            return
        nxt = body["next"]
        ack, claim = self.claimer.timed(  # a busy fleet's claims: keep them in the histogram
            lambda: self.ctx.store.report_and_claim(
                attempt_id, report, nxt["runner"], nxt.get("labels", [])
            )
        )
        resp.media = {**render.result_ack(ack), "next": self.claimer.answer(claim)}


class OutputResource:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, attempt_id: str) -> None:
        """The kept output from byte ``offset`` (default 0) on, and where it sits."""
        got = self.ctx.store.output_from(attempt_id, _offset(req) or 0)
        resp.content_type = "text/plain; charset=utf-8"
        # Output is anyone's bytes (HTML too): a browser must never sniff it into a page.
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("STQ-Attempt-Finished", "true" if got.finished else "false")
        resp.set_header("STQ-Output-Start", str(got.start))
        resp.set_header("STQ-Output-End", str(got.end))
        resp.text = got.text

    def on_post(self, req: falcon.Request, resp: falcon.Response, attempt_id: str) -> None:
        """A runner's output so far, from byte ``offset``; answers whether to stop."""
        text = bodies.parse_text(req)
        cancel = self.ctx.store.append_output(attempt_id, text, _offset(req))
        resp.media = {"cancel": cancel}


def _offset(req: falcon.Request) -> int | None:
    """The ``offset`` query parameter: a byte offset, 0 or more; 400 otherwise."""
    return req.get_param_as_int("offset", min_value=0)


def routes(ctx: Context) -> list[tuple[str, object]]:
    return [
        ("/api/v1/attempts/claim", ClaimResource(ctx)),
        ("/api/v1/attempts/{attempt_id}/heartbeat", HeartbeatResource(ctx)),
        ("/api/v1/attempts/{attempt_id}/result", ResultResource(ctx)),
        ("/api/v1/attempts/{attempt_id}/output", OutputResource(ctx)),
    ]
