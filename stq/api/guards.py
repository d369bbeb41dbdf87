"""What every request passes before a resource sees it (SPEC section 6).

* The bearer token, when ``STQ_TOKEN`` is set, compared in constant time.
  Exempt: ``GET /api/v1/health`` (load balancers probe it) and the dashboard's
  static files (they hold no data; the page asks for the token itself).
* The 16 MiB body limit: refused from ``Content-Length`` before anything is
  read, and enforced again while reading (a chunked body has no length), so a
  body is never read whole past the limit.
"""

from __future__ import annotations

import hmac
from typing import Any

import falcon

from stq.errors import BadRequest, PayloadTooLarge, Unauthorized
from stq.settings import MAX_BODY_BYTES

_CHUNK = 64 * 1024
_EXEMPT_PREFIXES = ("/dashboard/",)
_EXEMPT_PATHS = ("/api/v1/health", "/")


def is_exempt(req: falcon.Request) -> bool:
    """Whether a request needs no token: health, and the dashboard's static files."""
    if req.method not in ("GET", "HEAD"):
        return False
    return req.path in _EXEMPT_PATHS or req.path.startswith(_EXEMPT_PREFIXES)


class Guard:
    """Falcon middleware: token check, then the Content-Length half of the body limit."""

    def __init__(self, token: str | None, max_body: int = MAX_BODY_BYTES):
        self._token = token.encode() if token else None
        self._max_body = max_body

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._token is not None and not is_exempt(req):
            self._check_token(req.get_header("Authorization") or "")
        if (req.content_length or 0) > self._max_body:
            resp.set_header("Connection", "close")
            raise PayloadTooLarge(f"The request body is over the {self._max_body} byte limit.")

    def _check_token(self, header: str) -> None:
        scheme, _, credentials = header.partition(" ")
        given = credentials.strip().encode() if scheme.lower() == "bearer" else b""
        assert self._token is not None
        # compare_digest on equal-type bytes: time does not depend on where they differ.
        if not (given and hmac.compare_digest(given, self._token)):
            if not header:
                raise Unauthorized()
            raise Unauthorized(
                "The bearer token was refused: send 'Authorization: Bearer <token>'."
            )


def read_body(req: falcon.Request, max_body: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read in chunks and refused as soon as it passes ``max_body``.

    With a Content-Length only that many bytes are read (the guard has checked
    it); without one (chunked) the server's terminated input is read to its end.
    """
    if req.content_length is not None:
        stream = req.bounded_stream
    elif (
        req.env.get("wsgi.input_terminated")
        or "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    ):
        stream = req.stream
    else:
        return b""
    parts: list[bytes] = []
    total = 0
    while chunk := _read_chunk(stream):
        total += len(chunk)
        if total > max_body:
            raise PayloadTooLarge(f"The request body is over the {max_body} byte limit.")
        parts.append(chunk)
    return b"".join(parts)


def _read_chunk(stream: Any) -> bytes:
    """The next piece of the body; a body the WSGI server cannot frame is the client's 400.

    gunicorn raises its own parse errors (a bad chunk size, a missing chunk
    terminator) from the read, which would otherwise be a 500.
    """
    try:
        return stream.read(_CHUNK)
    except Exception as exc:
        raise BadRequest(f"The request body could not be read: {exc}") from None
