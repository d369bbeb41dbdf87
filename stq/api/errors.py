"""The single error handler: everything that goes wrong answers the API's error body (docs/api.md).

``{"error": {"code", "message", "details"}}`` for StqError, for falcon's own
HTTPErrors (its 404 for unknown routes, 405, 400 for bad query parameters) and
for unexpected exceptions (500, traceback logged, never an HTML page).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import falcon

from stq.errors import StqError

log = logging.getLogger("stq.api")

_FALCON_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    422: "invalid_workflow",
    503: "store_unavailable",
}


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def code_for(status: int, title: str | None) -> str:
    """The error body's ``code`` for an HTTP status: STQ's own name, else the title's words."""
    return _FALCON_CODES.get(status) or re.sub(r"\W+", "_", str(title or status)).lower()


def _http_error_body(exc: falcon.HTTPError) -> tuple[int, dict[str, Any]]:
    status = exc.status_code
    code = code_for(status, exc.title)
    message = exc.description or exc.title or str(status)
    if status == 404 and not exc.description:
        message = "No such resource."
    if status == 405 and not exc.description:
        message = "That method is not allowed on this path."
    return status, error_body(code, message)


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
