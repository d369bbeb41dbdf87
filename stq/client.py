"""HTTP client for the STQ API (SPEC section 5), shared by the CLI and the runner.

One keep-alive connection (``stq.http_lite``: the standard library's sockets
and ``http.client``'s errors, a fraction of ``requests``' CPU per call) stays
open, so a busy runner pays for one TCP handshake, not one per call. Error
bodies come back as the matching ``StqError`` subclass, connection failures as
``ServerUnreachable``, so callers handle one exception tree. Redirects are
never followed: the bearer token must not travel to a host it was not meant for.
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import quote, urlencode

from stq import http_lite
from stq.errors import (
    EXIT_USAGE,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServerUnreachable,
    StoreUnavailable,
    StqError,
    Unauthorized,
    UsageError,
    WorkflowInvalid,
)
from stq.errors import Problem as _Problem
from stq.model import WorkflowSpec

#: Seconds to connect; the read timeout is the long poll plus this slack.
CONNECT_TIMEOUT = 5.0
READ_SLACK = 15.0

_BY_STATUS: dict[int, type[StqError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    503: StoreUnavailable,
}


class ServerError(StqError):
    """The server failed (5xx): worth retrying later, not the caller's fault."""

    code = "server_error"
    http_status = 500
    exit_code = EXIT_USAGE


#: What a runner retries with backoff rather than giving up on.
RETRYABLE = (ServerUnreachable, StoreUnavailable, ServerError)


class Client:
    """One server, one persistent connection, one method per endpoint."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self.conn = http_lite.Connection(self.url, headers, CONNECT_TIMEOUT)
        except http.client.InvalidURL as ex:  # a typo, not an outage: no retrying
            raise UsageError(f"{ex}: expected http://HOST:PORT") from None

    def close(self) -> None:
        self.conn.close()

    # --- plumbing -------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Any = None, params: Any = None, wait: float = 0.0
    ) -> http_lite.Response:
        if params:
            path = f"{path}?{urlencode(params)}"
        try:
            resp = self.conn.request(method, path, body, read_timeout=wait + READ_SLACK)
        except (OSError, http.client.HTTPException) as ex:
            raise ServerUnreachable(
                f"cannot reach {self.url}: start `stq server` or set STQ_SERVER"
            ) from ex
        if resp.status_code >= 300:
            raise _error(resp, self.url)
        return resp

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self._call(method, path, body, **kw)
        return resp.json() if resp.content else None

    # --- workflows ------------------------------------------------------------

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/api/v1/workflows", document)

    def workflows(self, limit: int | None = None, before: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        return self._json("GET", "/api/v1/workflows", params=params)["workflows"]

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

    def claim(self, runner: str, labels: list[str], wait: float = 0.0) -> dict | None:
        body = {"runner": runner, "labels": labels, "wait": wait}
        resp = self._call("POST", "/api/v1/attempts/claim", body, wait=wait)
        return None if resp.status_code == 204 or not resp.content else resp.json()

    def heartbeat(self, attempt_id: str) -> bool:
        """True when the runner must kill the command."""
        answer = self._json("POST", f"/api/v1/attempts/{_seg(attempt_id)}/heartbeat", {})
        return bool(answer and answer.get("cancel"))

    def result(self, attempt_id: str, report: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/attempts/{_seg(attempt_id)}/result", report)

    def health(self) -> bool:
        return bool(self._json("GET", "/api/v1/health").get("ok"))


def workflow_document(spec: WorkflowSpec) -> dict[str, Any]:
    """The JSON document ``POST /api/v1/workflows`` accepts, from a loaded workflow.

    Built from the loader's normalized spec (defaults applied, durations in
    seconds) rather than re-reading the YAML, so what is submitted is exactly
    what ``stq validate`` checked.
    """
    tasks: dict[str, Any] = {}
    for t in spec.tasks:
        task: dict[str, Any] = {
            "command": t.command if isinstance(t.command, str) else list(t.command),
            "max_attempts": t.max_attempts,
            "priority": t.priority,
        }
        optional = {
            "depends_on": list(t.depends_on),
            "duration": t.duration,
            "env": dict(t.env),
            "cwd": t.cwd,
            "labels": list(t.labels),
            "retry_delay": t.retry_delay,
        }
        task.update({k: v for k, v in optional.items() if v})
        tasks[t.name] = task
    doc: dict[str, Any] = {"name": spec.name, "tasks": tasks}
    if spec.description:
        doc["description"] = spec.description
    return doc


def _seg(value: str) -> str:
    """An id as one URL path segment: nothing in it may change the path."""
    return quote(str(value), safe="")


def _error(resp: http_lite.Response, url: str) -> StqError:
    """The StqError for an error answer, with the server's own message when it sent one."""
    try:
        error = resp.json().get("error") or {}
    except ValueError:
        error = {}
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
    return _BY_STATUS.get(resp.status_code, default)(message, details)
