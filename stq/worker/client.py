"""HTTP client for the STQ API (docs/api.md), shared by the CLI and the runner.

One keep-alive connection (``stq.worker.http_lite``: ``httptools`` on a socket, an eighth of
``requests``' CPU per call) stays open, so a busy runner pays for one TCP
handshake, not one per call. Error bodies come back as the matching
``StqError`` subclass, connection failures as ``ServerUnreachable`` (a request
sent but not answered in time as its ``ServerTimeout``), so callers handle one
exception tree. Redirects are never followed: the bearer token must not travel
to a host it was not meant for.
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote, urlencode

from stq.errors import (
    EXIT_USAGE,
    NotFound,
    NotStqServer,
    ServerUnreachable,
    StoreUnavailable,
    StqError,
    Unauthorized,
    UsageError,
    WorkflowInvalid,
    answered_for,
)
from stq.errors import Problem as _Problem
from stq.model import IDEMPOTENCY_HEADER
from stq.worker import http_lite

#: Seconds to connect; the read timeout is the long poll plus this slack.
CONNECT_TIMEOUT = 5.0
READ_SLACK = 15.0
#: Seconds ``submit`` keeps sending one submit (one Idempotency-Key) through outages.
SUBMIT_RETRY_FOR = 60.0
#: Pause before the first retry of an outage, doubled after each one up to the second.
RETRY_DELAYS = (0.5, 5.0)
#: The shortest read timeout a try is given, however little of its window is left.
MIN_READ_TIMEOUT = 1.0
#: Workflows asked for per page when every one is read (the server's largest page).
PAGE = 1000
T = TypeVar("T")


class ServerError(StqError):
    """The server failed (5xx): worth retrying later, not the caller's fault."""

    code = "server_error"
    http_status = 500
    exit_code = EXIT_USAGE


class ServerTimeout(ServerUnreachable):
    """The request went out but no answer came in time: the server may have carried it out.

    Still a ``ServerUnreachable`` to callers that wait and try again (the
    runner), but never worded as "cannot reach"; its cause is
    ``http_lite.ReadTimeout``.
    """

    code = "timeout"


class NoAnswer(StqError):
    """The server took connections but gave no usable answer in time: slow, not unreachable."""

    code = "no_answer"
    exit_code = EXIT_USAGE


#: Answers without STQ's error body that mean this URL serves something else: a 4xx
#: (but 401: the token) or 501, never a passing state; other 5xx may be a proxy's.
_NOT_STQ_STATUSES = frozenset(range(400, 500)) - {401} | {501}

#: What a runner retries with backoff rather than giving up on. An answer that is not
#: STQ's (a proxy's page while its server restarts, a wrong URL) is one more outage to
#: a runner, which logs it and keeps trying, as for an unreachable server (docs/cli.md).
RETRYABLE = (ServerUnreachable, StoreUnavailable, ServerError, NotStqServer)


class OutputPart(NamedTuple):
    """Part of an attempt's output as the server answered it (docs/api.md's output headers)."""

    text: str
    start: int
    end: int
    finished: bool


class Client:
    """One server, one persistent connection, one method per endpoint."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {_sendable(token)}"} if token else {}
        try:
            self.conn = http_lite.Connection(self.url, headers, CONNECT_TIMEOUT)
        except http.client.InvalidURL as ex:  # a typo, not an outage: no retrying
            raise UsageError(f"{ex}: expected http://HOST:PORT") from None
        except ValueError as ex:  # what urlsplit refuses, such as "http://[::1"
            raise UsageError(
                f"not an http(s) URL: {url!r} ({ex}): expected http://HOST:PORT"
            ) from None

    def close(self) -> None:
        self.conn.close()

    # --- plumbing -------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Any = None,
        wait: float = 0.0,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> http_lite.Response:
        if params:
            path = f"{path}?{urlencode(params)}"
        timeout = wait + READ_SLACK
        try:
            resp = self.conn.request(
                method, path, body, read_timeout=timeout, headers=headers, text=text
            )
        except http_lite.ReadTimeout as ex:  # sent: it may have been done, so not "cannot reach"
            raise ServerTimeout(
                f"{self.url} did not answer {method} {path} within {timeout:g} s: "
                "the server is overloaded or stuck; try again later"
            ) from ex
        except http_lite.AnswerTooLarge as ex:
            cap = self.conn.max_answer // 2**20
            raise self._not_stq(f"{method} {path} answered more than {cap} MiB") from ex
        except (OSError, http.client.HTTPException) as ex:
            raise ServerUnreachable(
                f"cannot reach {self.url}: start `stq server` or set STQ_SERVER"
            ) from ex
        if resp.status_code >= 300:
            raise self._error(resp, f"{method} {path}")
        return resp

    def _error(self, resp: http_lite.Response, request: str) -> StqError:
        """The StqError for an error answer; one that is not STQ's says the URL is wrong.

        An STQ server answers every error with the API's JSON error body, and
        its 404 means an unknown id only if the same URL answers STQ's health
        check: otherwise (a path prefix too many, another web server) the 404
        is about the URL, and must not read like an unknown id (exit 1).
        """
        error = _stq_error(resp)
        if error is None and resp.status_code in _NOT_STQ_STATUSES:
            return self._not_stq(f"{request} answered {resp.status_code} {resp.reason}")
        if error is None and resp.status_code >= 500:  # maybe a proxy in front: retryable
            return ServerError(
                f"{self.url} answered {request} with {resp.status_code} {resp.reason}, "
                "not an STQ error: retry later, or check --server or STQ_SERVER"
            )
        if resp.status_code == 404 and not self._serves_stq():
            return self._not_stq(f"no STQ API at {self.url}/api/v1")
        return _error(resp, error or {}, self.url)

    def _serves_stq(self) -> bool:
        """Whether this URL answers STQ's health check (when it cannot tell: yes)."""
        try:
            resp = self.conn.request("GET", "/api/v1/health", read_timeout=READ_SLACK)
        except (OSError, http.client.HTTPException):
            return True  # gone meanwhile: the server's own answer stands
        if resp.status_code == 404:
            return False
        body = _parse(resp)  # {"ok": true}, or the store is down: an STQ 503
        return isinstance(body, dict) and ("ok" in body or _stq_error(resp) is not None)

    def _not_stq(self, what: str) -> NotStqServer:
        return NotStqServer(
            f"{self.url} does not look like an STQ server ({what}): "
            "set --server or STQ_SERVER to its address, e.g. http://127.0.0.1:8000"
        )

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self._call(method, path, body, **kw)
        if not resp.content:
            return None
        answer = _parse(resp)
        if answer is _NOT_JSON:
            raise self._not_stq(f"{method} {path} answered something other than JSON")
        return answer

    # --- workflows ------------------------------------------------------------

    def submit(
        self,
        document: dict[str, Any] | bytes,
        *,
        read_timeout: float = READ_SLACK,
        retry_for: float = SUBMIT_RETRY_FOR,
        on_retry: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Submit a workflow once, however many answers are lost on the way.

        ``document`` is the JSON body: a document to encode, or bytes already
        encoded (``stq.loader.submit_body``: the file as written), sent as they
        are. The request carries a fresh ``Idempotency-Key``. A connection error,
        no answer within ``read_timeout`` seconds, or a 5xx sends the same
        request with the same key again (``retry_outages``), for up to
        ``retry_for`` seconds in all: the server stores one workflow whichever
        tries reached it, and answers a repeat with that one.
        """
        key = {IDEMPOTENCY_HEADER: uuid.uuid4().hex}
        started = time.monotonic()

        def post() -> dict[str, Any]:
            left = retry_for - (time.monotonic() - started)
            timeout = max(MIN_READ_TIMEOUT, min(read_timeout, left))
            # ``_call`` waits ``wait + READ_SLACK`` for an answer.
            return self._json(
                "POST", "/api/v1/workflows", document, wait=timeout - READ_SLACK, headers=key
            )

        try:
            return retry_outages(
                post, url=self.url, within=retry_for, started=started, on_retry=on_retry
            )
        except NoAnswer as ex:
            raise NoAnswer(
                f"{ex.message}; the workflow may have been created: check `stq status`"
            ) from ex

    def workflows(self, limit: int | None = None, before: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        return self._json("GET", "/api/v1/workflows", params=params)["workflows"]

    def every_workflow(self, page: int = PAGE) -> list[dict]:
        """Every workflow the server lists, newest first, read ``page`` at a time."""
        found: list[dict] = []
        before = None
        while True:
            batch = self.workflows(limit=page, before=before)
            found += batch
            if len(batch) < page:
                return found
            before = batch[-1]["id"]

    def workflow(self, workflow_id: str, tasks: bool = True) -> dict[str, Any]:
        """One workflow; ``tasks=False``: its summary alone (STQ's extension)."""
        params = None if tasks else {"tasks": "false"}
        return self._json("GET", f"/api/v1/workflows/{_seg(workflow_id)}", params=params)

    def cancel(self, workflow_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/workflows/{_seg(workflow_id)}/cancel")

    def retry(self, workflow_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/workflows/{_seg(workflow_id)}/retry")

    def delete(self, workflow_id: str) -> None:
        self._call("DELETE", f"/api/v1/workflows/{_seg(workflow_id)}")

    # --- tasks and attempts ---------------------------------------------------

    def tasks(self, state: str | None = None, workflow: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("state", state), ("workflow", workflow)) if v}
        return self._json("GET", "/api/v1/tasks", params=params)["tasks"]

    def task(self, task_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/tasks/{_seg(task_id)}")

    def output(self, attempt_id: str) -> str:
        return self._call("GET", f"/api/v1/attempts/{_seg(attempt_id)}/output").text

    def output_from(self, attempt_id: str, offset: int) -> OutputPart:
        """The kept output from byte ``offset`` on, where it sits, and whether it is all.

        A server without offsets answers the whole output and no headers: it is
        then taken as starting at byte 0, and as final.
        """
        path = f"/api/v1/attempts/{_seg(attempt_id)}/output"
        resp = self._call("GET", path, params={"offset": offset})
        end = resp.headers.get("STQ-Output-End")
        if end is None:
            return OutputPart(resp.text, 0, len(resp.content), True)
        return OutputPart(
            resp.text,
            int(resp.headers.get("STQ-Output-Start") or 0),
            int(end),
            resp.headers.get("STQ-Attempt-Finished") == "true",
        )

    def claim(self, runner: str, labels: list[str], wait: float = 0.0) -> dict | None:
        body = {"runner": runner, "labels": labels, "wait": wait}
        resp = self._call("POST", "/api/v1/attempts/claim", body, wait=wait)
        return None if resp.status_code == 204 or not resp.content else resp.json()

    def heartbeat(self, attempt_id: str, wait: float = 0.0) -> bool:
        """True when the runner must kill the command.

        ``wait``: let the server hold the answer up to that many seconds, answering
        at once when the command must stop (a server that cannot hold answers now).
        """
        body = {"wait": wait} if wait > 0 else {}
        path = f"/api/v1/attempts/{_seg(attempt_id)}/heartbeat"
        answer = self._json("POST", path, body, wait=wait)
        return bool(answer and answer.get("cancel"))

    def post_output(self, attempt_id: str, text: str, offset: int) -> bool:
        """Send output from byte ``offset`` on; True when the runner must kill the command."""
        path = f"/api/v1/attempts/{_seg(attempt_id)}/output"
        answer = self._json("POST", path, params={"offset": offset}, text=text)
        return bool(answer and answer.get("cancel"))

    def result(self, attempt_id: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/attempts/{_seg(attempt_id)}/result", report)

    # --- runners ----------------------------------------------------------------

    def runners(self) -> list[dict]:
        """The runners the server heard from in the last 10 minutes (docs/api.md).

        A server older than the list answers 404: a usage error, not an unknown id.
        """
        try:
            return self._json("GET", "/api/v1/runners")["runners"]
        except NotFound:
            raise UsageError(
                f"{self.url} does not list runners: its STQ server is older than this stq"
            ) from None

    def health(self) -> bool:
        answer = self._json("GET", "/api/v1/health")
        return isinstance(answer, dict) and bool(answer.get("ok"))


def retry_outages(
    call: Callable[[], T],
    *,
    url: str,
    within: float,
    started: float | None = None,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, made again through outages for up to ``within`` seconds.

    An outage is a connection that fails or drops, no answer in time, or a
    5xx; any other error is the answer and is raised at once. Only safe for
    a call that may be repeated: a read, or a keyed submit. The seconds count
    from ``started`` (else from the first failure), with a pause of 0.5 s
    doubling up to 5 s between tries; ``on_retry`` hears once what went wrong.
    Giving up, a server that never took a connection is unreachable (the
    last error stands); one that took connections but never answered usably
    is ``NoAnswer``, never "unreachable".
    """
    delay, longest = RETRY_DELAYS
    connected = False
    while True:
        try:
            return call()
        except (ServerUnreachable, ServerError, StoreUnavailable) as ex:
            what = _outage(ex)
            if what is None:
                raise
            now = clock()
            started = now if started is None else started
            connected = connected or not _never_connected(ex)
            if now + delay - started > within:
                if not connected:
                    raise
                spent = f"{now - started:.0f} s"
                failing = isinstance(ex, ServerError | StoreUnavailable)  # answered, a 5xx
                raise NoAnswer(
                    f"the server at {url} kept failing for {spent} ({what})"
                    if failing
                    else f"the server at {url} did not answer within {spent} (last try: {what})"
                ) from ex
            if on_retry is not None:
                on_retry(f"{url}: {what}; trying again for up to {within:g} s")
                on_retry = None
        sleep(delay)
        delay = min(delay * 2, longest)


def _outage(ex: StqError) -> str | None:
    """What went wrong, if ``ex`` is an outage worth another try; None if it is an answer."""
    if isinstance(ex, ServerError | StoreUnavailable):
        return ex.message
    cause = ex.__cause__  # ``_call`` chains what the connection raised
    if isinstance(cause, TimeoutError):
        return "no answer in time"
    if _never_connected(ex):
        return f"cannot connect ({cause})"
    if isinstance(cause, http.client.HTTPException | ConnectionError):
        return "the connection closed before an answer"
    return str(cause) if isinstance(cause, OSError) else None


#: Errors of a connection that was never made, so nothing was sent.
_NOT_CONNECTED = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})


def _never_connected(ex: StqError) -> bool:
    """Whether the try surely never reached the server (refused, no route, no such host).

    A timeout counts as reached: it may have been the answer that was late.
    """
    cause = ex.__cause__
    return isinstance(cause, socket.gaierror) or (
        isinstance(cause, OSError) and cause.errno in _NOT_CONNECTED
    )


def _seg(value: str) -> str:
    """An id as one URL path segment: nothing in it may change the path.

    An empty id would make the path another endpoint's (``/tasks/`` lists
    tasks), so it is refused here, for every command at once.
    """
    if not str(value):
        raise UsageError("an id cannot be empty: see `stq status` for the ids")
    return quote(str(value), safe="")


def _sendable(token: str) -> str:
    """``token`` if it can go in a header as is; a line break (say) is a usage error.

    Caught here rather than as ``http_lite``'s ``ValueError`` so the message
    names the variable to fix.
    """
    if _UNSENDABLE.search(token):
        raise UsageError(
            "STQ_TOKEN holds a control character (a line break?) or a character that "
            "cannot go in an HTTP header: set it to the server's token alone"
        )
    return token


_UNSENDABLE = re.compile(r"[^\x20-\x7e\xa0-\xff]")
#: What ``_parse`` returns for a body that is not JSON (``None`` is valid JSON).
_NOT_JSON = object()


def _parse(resp: http_lite.Response) -> Any:
    """The answer's JSON, or ``_NOT_JSON``."""
    try:
        return resp.json()
    except ValueError:
        return _NOT_JSON


def _stq_error(resp: http_lite.Response) -> dict[str, Any] | None:
    """The ``error`` object of the API's error body, or None when the answer has none."""
    body = _parse(resp)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) and isinstance(error.get("code"), str) else None


def _error(resp: http_lite.Response, error: dict[str, Any], url: str) -> StqError:
    """The StqError for an error answer, with the server's own message when it sent one."""
    message = error.get("message") or f"{resp.status_code} {resp.reason}"
    details = error.get("details") or []
    if resp.status_code == 401:
        return Unauthorized(f"{url} refused the token: set STQ_TOKEN to the server's token")
    if 300 <= resp.status_code < 400:
        return ServerUnreachable(
            f"{url} answered with a redirect to {resp.headers.get('Location')!r}: "
            "set STQ_SERVER to the server's real URL"
        )
    if resp.status_code == 422:
        problems = [
            _Problem(message=d.get("message", ""), path=d.get("path", "")) for d in details
        ]
        return WorkflowInvalid(problems, message=message)
    default = ServerError if resp.status_code >= 500 else StqError
    return (answered_for(resp.status_code) or default)(message, details)
