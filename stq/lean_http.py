"""A narrow fast path for plain HTTP/1.1 requests, in front of gunicorn's parser.

Why: a busy runner sends one small request per task, and in the W1 profile
(py-spy ``--gil``, 2026-12-01) gunicorn's general HTTP/1 machinery held the
server's interpreter ~40% of the time: the parser alone ~23% (header policy,
proxy and forwarding rules, a ``BytesIO`` per read), the environ ~3%, and
formatting the ``Date`` header anew for every answer ~4%.

Safety by construction: this module reads a request head and accepts it only
if it is *plain*: ``GET``, ``POST`` or ``DELETE`` of an origin-form target
with no percent-escapes in the path, ``HTTP/1.1``, a ``Host``, only the few
headers every client here sends (see ``_PLAIN_HEADERS``), each at most once,
visible-ASCII values, a decimal ``Content-Length`` within the body limit,
and a head that fits gunicorn's default limits. For anything else it accepts
nothing: the bytes it has read go back to gunicorn's own parser, which then
owns the connection for the rest of its life and answers exactly as it would
have (so every error reply, ``Expect``, chunked bodies, forwarding headers,
TLS and Unix sockets remain gunicorn's). Bodies of plain requests are read
whole before the application runs (they are at most the body limit, and the
API reads every body whole anyway).

The answer is always written by gunicorn's own ``Response`` (``CachedDateResponse``
only reuses the ``Date`` value within the same second), so what goes on the
wire is gunicorn's for both paths.
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
from typing import Any, NamedTuple

from gunicorn import util
from gunicorn.http import wsgi

from stq.settings import MAX_BODY_BYTES

#: The largest head (request line and headers) taken here; gunicorn's default
#: ``limit_request_line`` is 4094, so a plain head never needs a larger limit.
MAX_HEAD = 4094
#: The most header lines taken here (gunicorn's default limit is 100).
MAX_FIELDS = 16
#: Headers a plain request may carry (upper case, as gunicorn names them). Any
#: other (``Expect``, ``Transfer-Encoding``, ``Upgrade``, ``Forwarded`` and the
#: ``X-Forwarded-*`` family, cookies...) sends the request to gunicorn.
_PLAIN_HEADERS = frozenset(
    {
        "HOST",
        "ACCEPT",
        "ACCEPT-ENCODING",
        "AUTHORIZATION",
        "CONNECTION",
        "CONTENT-LENGTH",
        "CONTENT-TYPE",
        "USER-AGENT",
    }
)
_METHODS = frozenset({"GET", "POST", "DELETE"})
#: ``METHOD /path[?query] HTTP/1.1``: no ``%`` in the path (so PATH_INFO is the
#: path as sent, no unquoting to get wrong), no fragment, no spaces or controls.
_PATH = rb"(/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)"
_QUERY = rb"(?:\?([A-Za-z0-9._~!$&'()*+,;=:@/?%-]*))?"
_REQUEST_LINE = re.compile(rb"([A-Z]+) " + _PATH + _QUERY + rb" HTTP/1\.1")
#: ``Name: value`` with a token name (no ``_``: gunicorn has rules for those)
#: and a visible-ASCII value, optional spaces around it, no tabs or obs-fold.
_FIELD = re.compile(rb"([A-Za-z0-9!#$&'*+.^`|~-]+): *([\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)? *")
_RECV = 65536


class NoRequest(Exception):
    """The client closed the connection cleanly between requests."""


class PlainRequest:
    """A plain request, with the attributes gunicorn's ``Response``, hooks and logs read."""

    __slots__ = ("body", "headers", "method", "must_close", "path", "query", "uri", "version")

    def __init__(self, method: str, path: str, query: str, uri: str, headers: list, body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.uri = uri
        self.version = (1, 1)
        self.headers = headers  # [(NAME, value)], as gunicorn's Request has them
        self.body = body
        self.must_close = False

    def should_close(self) -> bool:
        if self.must_close:
            return True
        for name, value in self.headers:
            if name == "CONNECTION":
                return value.lower() == "close"
        return False

    def force_close(self) -> None:
        self.must_close = True


class Head(NamedTuple):
    """A plain request's head, as parsed."""

    method: str
    path: str
    query: str
    uri: str
    headers: list[tuple[str, str]]
    content_length: int


def parse_head(head: bytes, max_body: int = MAX_BODY_BYTES) -> Head | None:
    """The head (request line and headers, without the blank line) if plain, else None."""
    lines = head.split(b"\r\n")
    if len(lines) > MAX_FIELDS + 1:
        return None  # (a bare CR or LF left in a line fails the patterns below)
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None or line[1].decode() not in _METHODS:
        return None
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in lines[1:]:
        field = _FIELD.fullmatch(raw)
        if field is None:
            return None
        name = field[1].decode().upper()
        if name not in _PLAIN_HEADERS or name in seen:
            return None
        seen.add(name)
        headers.append((name, (field[2] or b"").decode()))
    length = 0
    for name, value in headers:
        if name == "CONTENT-LENGTH":
            if not value.isdigit() or int(value) > max_body:
                return None
            length = int(value)
        elif name == "CONNECTION" and value.lower() not in ("close", "keep-alive"):
            return None
    if "HOST" not in seen:
        return None
    target = line[2].decode()
    query = (line[3] or b"").decode()
    uri = f"{target}?{query}" if line[3] is not None else target
    return Head(line[1].decode(), target, query, uri, headers, length)


class PlainReader:
    """Reads plain requests off one connection until one is not plain.

    ``read`` returns the next ``PlainRequest``, or None when the next request
    is not plain: ``unread`` then holds every byte taken from the socket
    since the last plain request, for gunicorn's parser to start from.
    """

    def __init__(self, sock: socket.socket, max_body: int = MAX_BODY_BYTES):
        self.sock = sock
        self.max_body = max_body
        self.buffer = b""

    def read(self, head_timeout: float | None) -> PlainRequest | None:
        """The next request; ``head_timeout`` bounds the wait for its head, as gunicorn's."""
        self.sock.settimeout(head_timeout)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                return None
            data = self.sock.recv(_RECV)
            if not data:
                if self.buffer:
                    return None  # cut off mid-head: gunicorn decides what that earns
                raise NoRequest()
            self.buffer += data
        if end > MAX_HEAD:
            return None
        parsed = parse_head(self.buffer[:end], self.max_body)
        if parsed is None:
            return None
        method, path, query, uri, headers, length = parsed
        self.sock.settimeout(None)  # a request has begun: blocking, as gunicorn reads a body
        start = end + 4
        if len(self.buffer) - start >= length:
            body = self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
        else:
            body = self._read_body(start, length)
            if body is None:
                return None
        return PlainRequest(method, path, query, uri, headers, body)

    def _read_body(self, start: int, length: int) -> bytes | None:
        """The rest of a body longer than what is buffered, read in place (no re-copying)."""
        body = bytearray(length)
        got = len(self.buffer) - start
        body[:got] = self.buffer[start:]
        view = memoryview(body)
        while got < length:
            received = self.sock.recv_into(view[got:])
            if not received:
                self.buffer += bytes(body[len(self.buffer) - start : got])
                return None  # body cut off: gunicorn's parser reports it
            got += received
        self.buffer = b""
        return bytes(body)

    def unread(self) -> bytes:
        """What was read past the last plain request (taken once)."""
        data, self.buffer = self.buffer, b""
        return data


def plain_environ(
    req: PlainRequest, sock: socket.socket, client: tuple, server: tuple, base: dict[str, Any]
) -> dict[str, Any]:
    """The WSGI environ gunicorn's ``wsgi.create`` builds for the same request over TCP.

    All but gunicorn's ``wsgi.early_hints`` extension (a 103 answer), which
    STQ's app never sends.
    """
    environ = dict(base)
    environ["wsgi.input"] = io.BytesIO(req.body)
    environ["gunicorn.socket"] = sock
    environ["REQUEST_METHOD"] = req.method
    environ["QUERY_STRING"] = req.query
    environ["RAW_URI"] = req.uri
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    for name, value in req.headers:
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
        elif name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
        else:
            environ["HTTP_" + name.replace("-", "_")] = value
    environ["wsgi.url_scheme"] = "http"
    environ["REMOTE_ADDR"] = client[0]
    environ["REMOTE_PORT"] = str(client[1])
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1])
    environ["PATH_INFO"] = req.path
    environ["SCRIPT_NAME"] = ""
    return environ


def plain_possible(cfg: Any, client: Any, server: Any) -> bool:
    """Whether this connection may use the plain path at all.

    Not over TLS, a Unix socket or the PROXY protocol, not with a
    ``SCRIPT_NAME`` to strip, and not when gunicorn's request limits are set
    below what a plain head may use.
    """

    def at_least(limit: int, needed: int) -> bool:
        return limit == 0 or limit >= needed

    return (
        isinstance(client, tuple)
        and isinstance(server, tuple)
        and not cfg.is_ssl
        and cfg.proxy_protocol == "off"
        and not os.environ.get("SCRIPT_NAME")
        and at_least(cfg.limit_request_line, MAX_HEAD)
        and at_least(cfg.limit_request_field_size, MAX_HEAD)
        and at_least(cfg.limit_request_fields, MAX_FIELDS)
    )


_date: tuple[int, str] = (0, "")


def http_date() -> str:
    """The ``Date`` header value, formatted once per second rather than per answer."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, util.http_date(now))
    return _date[1]


class CachedDateResponse(wsgi.Response):
    """gunicorn's response writer; only the ``Date`` value is reused within a second."""

    def default_headers(self) -> list[str]:
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        major, minor = self.req.version[:2]
        headers = [
            f"HTTP/{major}.{minor} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {http_date()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers
