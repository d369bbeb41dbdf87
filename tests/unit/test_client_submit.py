"""``Client.submit`` sends one Idempotency-Key and rides out outages with it; the retry
helper's pacing and its words when it gives up (a slow server is never "unreachable")."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from stq.errors import (
    BadRequest,
    Conflict,
    ServerUnreachable,
    StoreUnavailable,
    WorkflowInvalid,
)
from stq.worker.client import Client, NoAnswer, ServerError, retry_outages
from tests.fault_proxy import FaultProxy
from tests.helpers import free_port, http_server

DOC = {"name": "wf", "tasks": {"a": {"command": "true"}}}
CREATED = {"id": "w1", "name": "wf", "state": "running", "tasks": []}


def stq_error(code: str) -> dict:
    return {"error": {"code": code, "message": f"the server says {code}", "details": []}}


class Scripted(BaseHTTPRequestHandler):
    """Answers each POST with the next (status, body) of ``SCRIPT``; records what came."""

    SCRIPT: list[tuple[int, object]] = []
    SEEN: list[tuple[str | None, bytes]] = []
    LOCK = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.LOCK:
            self.SEEN.append((self.headers.get("Idempotency-Key"), body))
            status, answer = self.SCRIPT.pop(0) if self.SCRIPT else (201, CREATED)
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    Scripted.SCRIPT, Scripted.SEEN = [], []
    with http_server(Scripted) as served:
        yield served


def test_a_submit_carries_a_fresh_key_and_retries_5xx_with_the_same_bytes(url: str) -> None:
    Scripted.SCRIPT = [(503, stq_error("store_unavailable")), (502, b"<html>Bad Gateway</html>")]
    said: list[str] = []
    assert Client(url).submit(DOC, on_retry=said.append) == CREATED
    keys = {key for key, _ in Scripted.SEEN}
    (key,) = keys
    assert key is not None and re.fullmatch(r"[0-9a-f]{32}", key)
    assert len(Scripted.SEEN) == 3 and len({body for _, body in Scripted.SEEN}) == 1
    assert len(said) == 1 and "the server says store_unavailable" in said[0]
    Client(url).submit(DOC)
    assert Scripted.SEEN[-1][0] not in (None, key)  # the next submit: another key


@pytest.mark.parametrize(
    ("status", "kind"), [(422, WorkflowInvalid), (409, Conflict), (400, BadRequest)]
)
def test_an_answer_that_is_not_an_outage_is_not_retried(
    url: str, status: int, kind: type[Exception]
) -> None:
    Scripted.SCRIPT = [(status, stq_error("no"))]
    with pytest.raises(kind):
        Client(url).submit(DOC)
    assert len(Scripted.SEEN) == 1


def test_a_server_that_never_answers_is_not_called_unreachable() -> None:
    with FaultProxy(upstream_port=None, plan=["swallow"] * 10) as silent:
        with pytest.raises(NoAnswer) as caught:
            Client(silent.url).submit(DOC, read_timeout=1, retry_for=2.5)
        tries = silent.accepted
    message = caught.value.message
    assert message.startswith(f"the server at {silent.url} did not answer within ")
    assert message.endswith("the workflow may have been created: check `stq status`")
    assert "cannot reach" not in message and "unreachable" not in message
    assert caught.value.exit_code == 2 and tries == 2


def test_a_server_never_reached_is_unreachable_and_nothing_was_sent() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachable) as caught:
        Client(down).submit(DOC, retry_for=1.2)
    assert not isinstance(caught.value, NoAnswer)
    assert caught.value.message.startswith(f"cannot reach {down}")


# --- the retry helper on its own, with a hand-driven clock ---------------------------


class Timeline:
    """A clock that moves only when the helper sleeps (or a call takes time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def retry(self, errors: list[Exception], takes: float = 0.0, **kw: Any) -> str:
        """``retry_outages`` of a call raising ``errors`` in turn, on this clock."""
        kw = {"url": "u", "within": 10, **kw}
        return retry_outages(
            failing(errors, self, takes), sleep=self.sleep, clock=self.clock, **kw
        )


def outage(cause: BaseException) -> ServerUnreachable:
    ex = ServerUnreachable("cannot reach http://x: start `stq server` or set STQ_SERVER")
    ex.__cause__ = cause
    return ex


def failing(errors: list[Exception], timeline: Timeline, takes: float = 0.0) -> Callable[[], str]:
    """A call that raises ``errors`` in turn, then answers; each try takes ``takes`` s."""

    def call() -> str:
        timeline.now += takes
        if errors:
            raise errors.pop(0)
        return "answer"

    return call


def test_pauses_double_from_half_a_second_to_five() -> None:
    timeline = Timeline()
    errors: list[Exception] = [ServerError("502")] * 7
    said: list[str] = []
    answer = timeline.retry(errors, url="http://x", within=60, on_retry=said.append)
    assert answer == "answer"
    assert timeline.sleeps == [0.5, 1, 2, 4, 5, 5, 5]
    assert said == ["http://x: 502; trying again for up to 60 s"]  # once, not every try


def test_gives_up_when_the_window_counted_from_the_start_is_spent() -> None:
    timeline = Timeline()
    errors: list[Exception] = [outage(TimeoutError("timed out"))] * 100
    with pytest.raises(NoAnswer, match=r"did not answer within 64 s \(last try: no answer"):
        timeline.retry(errors, takes=15, url="http://x", within=60, started=0.0)
    assert timeline.sleeps == [0.5, 1, 2]  # tries at 0, 15.5, 31.5 and 48.5 s: no fifth


def test_refused_then_slow_is_no_answer_but_refused_alone_stands() -> None:
    timeline = Timeline()
    refused = outage(ConnectionRefusedError(111, "Connection refused"))
    mixed: list[Exception] = [outage(TimeoutError()), *[refused] * 100]
    with pytest.raises(NoAnswer):  # one try may have reached the server
        timeline.retry(mixed)
    only_refused: list[Exception] = [refused] * 100
    with pytest.raises(ServerUnreachable) as caught:
        timeline.retry(only_refused)
    assert caught.value is refused


def test_errors_that_are_answers_pass_through_at_once() -> None:
    timeline = Timeline()
    redirect = ServerUnreachable("http://x answered with a redirect")  # no cause: an answer
    for error in (redirect, Conflict("no"), StoreUnavailable("down")):
        errors: list[Exception] = [error]
        try:
            timeline.retry(errors)
        except (ServerUnreachable, Conflict) as ex:
            assert ex is error
        else:
            assert isinstance(error, StoreUnavailable)  # a 503 is an outage: retried, answered
    assert timeline.sleeps == [0.5]


def test_a_server_that_kept_answering_5xx_is_said_to_fail_not_to_be_silent() -> None:
    timeline = Timeline()
    errors: list[Exception] = [ServerError("answered 502 Bad Gateway")] * 100
    with pytest.raises(NoAnswer) as caught:
        timeline.retry(errors)
    assert (
        caught.value.message == "the server at u kept failing for 8 s (answered 502 Bad Gateway)"
    )
