"""What every request passes before a resource sees it.

All of it reads headers only, so a refused request has had nothing read of
its body. A refusal, and any answer given before the whole body was read,
asks for ``Connection: close``: gunicorn keeps that header for itself, and
on its own reads at most 64 KiB of such a body before it closes the
connection; other WSGI servers close on the header.

* With no ``STQ_TOKEN`` (a loopback server), no web page the user visits may
  drive the server, first by DNS rebinding and then from its own origin:
  a ``Host`` that is not loopback, the address the connection arrived on, or
  in ``STQ_ALLOWED_HOSTS`` is 421; an ``Origin`` other than the ``Host`` or an
  allowed host (``null`` included) is 403. With a token the token protects,
  and these two are not checked.
* The bearer token, when set, compared in constant time. Exempt:
  ``GET``/``HEAD`` of ``/api/v1/health`` (load balancers probe it),
  ``/api/v1/openapi.json`` and the dashboard's static files (they hold no
  data; the page asks for the token itself).
* The 16 MiB body limit (``stq.body_limit``): refused from ``Content-Length``
  (413), and enforced again while reading (a chunked body has no length).
* A body must be JSON (``text/plain`` for output posts), else 415: a page
  can post ``text/plain`` or a form anywhere without asking, never JSON.
* A body read off the client's socket must keep arriving (``body_rate``).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import falcon

from stq.api.body_rate import BodyRate, PacedInput, Watchdog
from stq.body_limit import check_body_size
from stq.errors import (
    BadRequest,
    Forbidden,
    MisdirectedRequest,
    StqError,
    Unauthorized,
    UnsupportedMediaType,
)
from stq.settings import MAX_BODY_BYTES, Settings, is_loopback, parse_host

_CHUNK = 64 * 1024
_EXEMPT_PREFIXES = ("/dashboard/",)
_EXEMPT_PATHS = ("/api/v1/health", "/api/v1/openapi.json", "/")
JSON = "application/json"
TEXT = "text/plain"
#: Where a runner posts what a command printed: the one body that is plain text.
_TEXT_BODY = re.compile(r"/api/v1/attempts/[^/]+/output")
#: How many served ``Host`` values are remembered (a client cannot grow the memory).
MAX_REMEMBERED_HOSTS = 64
#: One per process: the body-rate watchdog thread is shared by every app in it.
WATCHDOG = Watchdog()


def is_exempt(req: falcon.Request) -> bool:
    """Whether a request needs no token: health, the OpenAPI document, the dashboard's files."""
    if req.method not in ("GET", "HEAD"):
        return False
    return req.path in _EXEMPT_PATHS or req.path.startswith(_EXEMPT_PREFIXES)


class Guard:
    """Falcon middleware: host and origin (or the token), body size and type, body pace."""

    def __init__(
        self,
        settings: Settings,
        max_body: int = MAX_BODY_BYTES,
        watchdog: Watchdog = WATCHDOG,
    ):
        self._token = settings.token.encode() if settings.token else None
        self._hosts = Hosts(settings.allowed_hosts)
        self._max_body = max_body
        self._rate = BodyRate(settings.body_grace, settings.body_min_rate)
        self._watchdog = watchdog

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        env = req.env
        try:
            if self._token is None:
                self._hosts.check(env)
            elif not is_exempt(req):
                self._check_token(env.get("HTTP_AUTHORIZATION") or "")
            length = req.content_length
            chunked = length is None and _chunked(env)
            if length or chunked:
                self._check_body(req, length or 0)
        except StqError:
            resp.set_header("Connection", "close")  # the body, if any, stays unread
            raise
        sock = env.get("gunicorn.socket")
        if sock is not None and (length or chunked):  # a body still to come off the socket
            paced = PacedInput(req.stream, sock, length, self._rate, self._watchdog)
            req.stream = env["wsgi.input"] = paced  # falcon's bounded_stream reads the env's

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        stream = req.env.get("wsgi.input")
        if type(stream) is PacedInput:
            if not stream.complete:
                # An answer before the whole body (a 404, an error): gunicorn would read the
                # rest, unpaced, to find the next request. It drains a little and closes.
                resp.set_header("Connection", "close")
            stream.release()

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

    def _check_body(self, req: falcon.Request, length: int) -> None:
        """413 for a declared length over the limit, 415 for a body of the wrong type."""
        check_body_size(length, limit=self._max_body)
        if not _media_ok(req):
            want = _media_wanted(req)
            raise UnsupportedMediaType(
                f"A request body here must be {want}: send 'Content-Type: {want}'."
            )


def _chunked(env: dict[str, Any]) -> bool:
    return "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower()


def _media_wanted(req: falcon.Request) -> str:
    return TEXT if req.method == "POST" and _TEXT_BODY.fullmatch(req.path) else JSON


def _media_ok(req: falcon.Request) -> bool:
    """Whether the body's type is the one this request takes (parameters such as charset aside)."""
    given = req.content_type or ""
    want = _media_wanted(req)
    return given == want or falcon.parse_header(given)[0].lower() == want


class Hosts:
    """The host names this server answers for, and the web origins it takes requests from."""

    def __init__(self, allowed: tuple[str, ...]):
        self._allowed = [named for entry in allowed if (named := parse_host(entry))]
        #: ``Host`` values served on any connection (loopback, listed), parsed: every
        #: request of a runner carries the same one, so it is looked at once.
        self._served: dict[str, tuple[str, int | None]] = {}

    def check(self, env: dict[str, Any]) -> None:
        """421 for a ``Host`` this server does not answer for; 403 for a foreign ``Origin``."""
        host = env.get("HTTP_HOST")  # none from an HTTP/1.0 client: nothing to rebind
        named = None
        if host is not None:
            named = self._served.get(host) or self._named(host, env)
        origin = env.get("HTTP_ORIGIN")
        if origin is not None and not self._origin_ok(origin, named):
            raise Forbidden(
                f"Requests from web pages of another origin ({origin!r}) are refused: "
                "open the dashboard at the server's own address, or list that host in "
                "STQ_ALLOWED_HOSTS where the server runs."
            )

    def _named(self, host: str, env: dict[str, Any]) -> tuple[str, int | None]:
        """The ``Host``'s (name, port) if this server answers for that name, else a 421."""
        named = parse_host(host)
        if named is not None and (is_loopback(named[0]) or self._listed(named)):
            if len(self._served) < MAX_REMEMBERED_HOSTS:
                self._served[host] = named
            return named
        if named is not None and _same_address(named[0], _local(env)):
            return named
        raise MisdirectedRequest(
            f"This server does not answer for the host {host!r}. If that is its "
            "name, list it in STQ_ALLOWED_HOSTS where the server runs."
        )

    def _origin_ok(self, origin: str, host: tuple[str, int | None] | None) -> bool:
        """Whether the origin's host[:port] is the ``Host``'s, or listed.

        As written, not with default ports filled in: behind a proxy that ends
        TLS, ``https://name`` arrives with ``Host: name`` over plain HTTP.
        """
        parts = urlsplit(origin.strip())
        try:
            named = (parts.hostname, parts.port)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null" (a sandboxed page, a file) among them
        return named == host or self._listed(named)

    def _listed(self, named: tuple[str, int | None]) -> bool:
        """In ``STQ_ALLOWED_HOSTS``: a name alone allows every port, ``name:port`` that port."""
        name, port = named
        return any(name == n and p in (None, port) for n, p in self._allowed)


def _local(env: dict[str, Any]) -> str | None:
    """The address the connection arrived on, if it came over IP.

    gunicorn's ``SERVER_NAME`` is the address the server listens on (so
    ``0.0.0.0`` for all of them, or the client's own ``Host`` on a Unix
    socket); the client socket's own name is the one it reached.
    """
    sock = env.get("gunicorn.socket")
    if sock is None:
        name = env.get("SERVER_NAME")
        return None if name in (None, "", "0.0.0.0", "::") else name
    try:
        local = sock.getsockname()
    except OSError:
        return None
    return local[0] if isinstance(local, tuple) else None  # a Unix socket's is a path


def _same_address(name: str, local: str | None) -> bool:
    """Whether the Host's name is the local address (an IPv4 one may come IPv6-mapped)."""
    if local is None:
        return False
    try:
        ours = ipaddress.ip_address(local)
        theirs = ipaddress.ip_address(name)
    except ValueError:
        return name == local.lower()
    if isinstance(ours, ipaddress.IPv6Address) and ours.ipv4_mapped is not None:
        ours = ours.ipv4_mapped
    return theirs == ours


def read_body(req: falcon.Request, max_body: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read in chunks and refused as soon as it passes ``max_body``.

    With a Content-Length only that many bytes are read (the guard has checked
    it), and a body that ends before them is a 400; without one (chunked) the
    server's terminated input is read to its end.
    """
    length = req.content_length
    if length is not None:
        stream = req.bounded_stream
    elif req.env.get("wsgi.input_terminated") or _chunked(req.env):
        stream = req.stream
    else:
        return b""
    parts: list[bytes] = []
    total = 0
    while chunk := _read_chunk(stream):
        total += len(chunk)
        check_body_size(total, limit=max_body)
        parts.append(chunk)
        if total == length:
            break  # all that was declared: no read to find the end
    if length is not None and total < length:
        raise BadRequest(f"The request body ended after {total} of its {length} bytes.")
    return b"".join(parts)


def _read_chunk(stream: Any) -> bytes:
    """The next piece of the body; a body the WSGI server cannot frame is the client's 400.

    gunicorn raises its own parse errors (a bad chunk size, a missing chunk
    terminator) from the read, which would otherwise be a 500.
    """
    try:
        return stream.read(_CHUNK)
    except StqError:
        raise  # the body-rate rule's 408
    except Exception as exc:
        raise BadRequest(f"The request body could not be read: {exc}") from None
