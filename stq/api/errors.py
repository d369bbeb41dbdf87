"""The single error handler: everything that goes wrong answers the API's error body (docs/api.md).

``{"error": {"code", "message", "details"}}`` for StqError, for falcon's own
HTTPErrors (its 404 for unknown routes, 405, 400 for bad query parameters),
coded by the one table of ``stq.errors``, and for unexpected exceptions (500,
traceback logged, never an HTML page).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon

from stq.errors import StqError, answered_for, error_body

log = logging.getLogger("stq.api")


def code_for(status: int, title: str | None) -> str:
    """The error body's ``code`` for an HTTP status: STQ's own, else the title's words."""
    known = answered_for(status)
    return known.code if known else re.sub(r"\W+", "_", str(title or status)).lower()


#: What falcon's routing errors say, which come without a description: its 404 is
#: about the path (an unknown id has its own message), its 405 about the method.
_ROUTING_MESSAGES = {
    404: "No such resource.",
    405: "That method is not allowed on this path.",
}


def _http_error_body(exc: falcon.HTTPError) -> tuple[int, dict[str, Any]]:
    status = exc.status_code
    message = exc.description or _ROUTING_MESSAGES.get(status) or exc.title or str(status)
    return status, error_body(code_for(status, exc.title), message)


def handle(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict) -> None:
    """Falcon error handler for ``Exception``: the one mapping of errors to bodies."""
    headers: dict[str, str] = {}
    if isinstance(exc, StqError):
        status, body = exc.http_status, exc.as_body()
        if status == 500:
            log.error("error on %s %s: %s", req.method, req.path, exc)
    elif isinstance(exc, falcon.HTTPError):
        status, body = _http_error_body(exc)
        headers = dict(exc.headers or {})
    else:
        log.exception("unexpected error on %s %s", req.method, req.path)
        status, body = 500, error_body("internal", "Internal server error; see the server log.")
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    resp.status = status
    resp.media = body
    resp.content_type = falcon.MEDIA_JSON
    for name, value in headers.items():
        resp.set_header(name, value)
