"""The client's HTTP/1.1 transport: one keep-alive connection, answers read by ``llhttp``.

``stq.worker.client.Client`` sends every call through one ``Connection``, so this
serves both the CLI and the runner (``stq worker``, one connection per server
it talks to). Answers are read by ``httptools.HttpResponseParser``
(MagicStack's binding of ``llhttp``, the C parser Node.js uses): this module
only moves bytes from the socket to it and keeps what its callbacks report.
The request side is serialisation only: a request line and headers checked
once against HTTP's grammar (names are tokens, values hold no control
characters, the target is visible ASCII) and written out, nothing read.

Why ``llhttp``: a busy runner makes one request per task, so the client's CPU
per call is hand-off time between tasks on a small machine. Measured with
``bench/bench_transport.py`` (2,000 claims on one connection to a local
``stq server``, the client's CPU per request, medians, 2-core machine shared
with other work): ~140 us here, against ~330 us with ``h11`` (python-hyper's
pure-Python parser), ~300 us for a lean ``http.client`` exchange and
~1,070 us for a ``requests.Session``. And like ``h11``, and unlike
``http.client`` or urllib3 (under ``requests``), which frame a chunk size with
``int(line, 16)`` and so take ``0x10``, ``+5`` or ``1_0`` as numbers,
``llhttp`` checks chunk sizes, lengths, status lines and headers against
HTTP/1.1's grammar and refuses the rest, so a broken or hostile answer on a
kept-alive connection is never framed differently from what the server meant.
``requests`` would also add ~110 ms of imports to each CLI command and brings
nothing the CLI wants (proxies, redirects and cookies are all refused).

``httptools`` cannot tell ``llhttp`` that the connection ended, so the one
framing decided here is RFC 9112's last rule (section 6.3): an answer with
neither a ``Content-Length`` nor chunked as its final transfer coding has a
body that ends when the server closes the connection. Any other answer cut
short by a close is broken. A ``HEAD`` is not sent, since the parser cannot be
told that its answer has no body.

What it keeps from the clients before it: one persistent connection with
``TCP_NODELAY``, each request going out as one write; no proxies or
``.netrc`` from the environment and no redirects followed (a 3xx comes back
as an answer, so the bearer token never travels to another host); a connect
timeout and a read timeout per call; and a check before each reuse that the
server has not closed the idle connection (gunicorn closes idle keep-alive
connections after a few seconds), in which case a new one is opened, as
urllib3 does. An answer's head is capped at ``MAX_HEAD`` bytes and its body at
``MAX_ANSWER``: a ``Content-Length`` over it is refused before the body is
read, and a chunked or read-to-close body as soon as it passes the cap.
Bytes after an answer drop the connection, so they never pass for the next.

Errors: failing to connect is an ``OSError`` (the request never left); a
timeout after the request went out is ``ReadTimeout``, since the server may
have acted on it; a broken exchange is an ``http.client.HTTPException``
(``AnswerTooLarge`` for the cap), or an ``OSError`` for a reset connection.
The connection is dropped after any failure, so the next call starts clean.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httptools

#: The largest answer body read. The largest answer the API gives is one
#: workflow with all its tasks (``GET /api/v1/workflows/{id}``): 32 MiB for a
#: 100,000-task workflow of short names, ~40 MiB for one whose file reaches
#: the 16 MiB request limit, more once every task has run. This leaves room
#: above that, and still bounds what a broken server can make a client hold.
MAX_ANSWER = 128 * 1024 * 1024
#: The largest answer head (status line and headers) read; ``llhttp`` has no cap of its own.
MAX_HEAD = 64 * 1024
#: Bytes asked of the socket per read.
RECV_SIZE = 64 * 1024
#: Methods that carry a body, so an empty one still says ``Content-Length: 0``.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: Methods whose answers the parser frames unaided (a HEAD's answer has no body to read).
_METHODS = _WITH_BODY | {"GET", "DELETE"}
#: RFC 9110's grammar for what a request carries: a field name is a token; a
#: field value holds no control characters but tab; a target is visible ASCII.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$")
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class AnswerTooLarge(http.client.HTTPException):
    """An answer whose body is over ``MAX_ANSWER`` bytes."""


class ReadTimeout(TimeoutError):
    """The request went out, but no answer came within the read timeout.

    Unlike a failure to connect, the server may have carried the request out,
    so a caller that retries must make the retry safe to repeat.
    """


class Headers(dict[str, str]):
    """Answer headers by lower-cased name; ``get`` ignores case, repeats are joined."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class Response:
    """The parts of an answer the client reads (``headers.get`` ignores case)."""

    def __init__(self, status: int, reason: str, headers: Headers, content: bytes):
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _Reader:
    """One connection's ``llhttp`` parser and what its callbacks report of the current answer.

    The parser lives as long as the connection (it carries its state from one
    answer to the next); ``start`` forgets the previous answer before a request.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.start()

    def start(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers = Headers()
        self.length = 0  # the final answer's Content-Length, 0 when it has none
        self.parts: list[bytes] = []
        self.size = 0
        self.head_done = False  # the final answer's head is in
        self.done = False  # the final answer is in
        self.keep_alive = False
        self.stray = False  # bytes came after the answer

    def on_message_begin(self) -> None:
        if self.done:
            self.stray = True

    def on_status(self, reason: bytes) -> None:
        if not self.done:
            self.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            return  # a chunked body's trailers, or a stray answer's head
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip(" \t")  # llhttp keeps trailing whitespace
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        if not self.done:
            self.head_done = True
            self.status = self.parser.get_status_code()
            length = self.headers.get("content-length")  # llhttp checked: digits, one value
            self.length = int(length) if length is not None else 0

    def on_body(self, data: bytes) -> None:
        if not self.done:
            self.size += len(data)
            self.parts.append(data)

    def on_message_complete(self) -> None:
        if self.done:
            return
        if self.status < 200:  # an interim answer (100 Continue): the final one follows
            self.reason, self.headers, self.head_done = b"", Headers(), False
            return
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()  # only valid before the next answer

    def ends_at_close(self) -> bool:
        """Whether the body is read to the close: no Content-Length, chunked not its framing."""
        if not self.head_done or self.done or "content-length" in self.headers:
            return False
        codings = self.headers.get("transfer-encoding", "")
        return codings.rpartition(",")[2].strip().lower() != "chunked"

    def response(self) -> Response:
        reason = self.reason.decode("latin-1")
        return Response(self.status, reason, self.headers, b"".join(self.parts))


class Connection:
    """One server, one socket reused across calls; not thread-safe (one per thread)."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        connect_timeout: float,
        max_answer: int = MAX_ANSWER,
    ):
        parts = urlsplit(url)
        try:
            port = parts.port  # raises on a port that is not a number
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise http.client.InvalidURL(f"not an http(s) URL: {url!r}")
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        default_port = 443 if self.https else 80
        self.port = port or default_port
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.max_answer = max_answer
        host = f"[{self.host}]" if ":" in self.host else self.host
        host = host if self.port == default_port else f"{host}:{self.port}"
        fixed = {"Host": host, "Accept-Encoding": "identity", "Accept": "application/json"}
        self._fixed = _head_lines({**fixed, **headers})  # a bad one fails here, not later
        self._sock: socket.socket | None = None
        self._reader: _Reader | None = None

    def close(self) -> None:
        sock = self._sock
        self._sock = self._reader = None
        if sock is not None:
            sock.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        read_timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> Response:
        """One exchange: ``body`` goes out as JSON (bytes: already JSON, sent as they are;
        or ``text`` as text/plain); the answer comes back whole.

        ``headers`` are this request's own, beside the connection's fixed ones.
        """
        if method not in _METHODS:
            raise ValueError(f"can't send {method!r}: one of {sorted(_METHODS)} is")
        target = self.prefix + path
        if _BAD_TARGET.search(target):
            raise http.client.InvalidURL(f"can't send {method} {target!r}: not visible ASCII")
        wire = f"{method} {target} HTTP/1.1\r\n".encode("ascii") + self._fixed
        if headers:
            wire += _head_lines(headers)
        if text is not None:
            data = text.encode("utf-8", errors="replace")
            length = b"Content-Length: %d\r\n\r\n" % len(data)
            wire += b"Content-Type: text/plain; charset=utf-8\r\n" + length + data
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            length = b"Content-Length: %d\r\n\r\n" % len(data)
            wire += b"Content-Type: application/json\r\n" + length + data
        elif method in _WITH_BODY:
            wire += b"Content-Length: 0\r\n\r\n"
        else:
            wire += b"\r\n"
        sock, reader = self._usable()
        try:
            sock.settimeout(read_timeout)
            sock.sendall(wire)
            self._answer(sock, reader)
        except TimeoutError as ex:
            self.close()
            raise ReadTimeout(f"no answer to {method} {target} within {read_timeout:g} s") from ex
        except BaseException:
            self.close()
            raise
        if not reader.keep_alive or reader.stray:
            self.close()  # "Connection: close", HTTP/1.0, a body that ended with the
        return reader.response()  # connection, or bytes that must never pass for an answer

    def _answer(self, sock: socket.socket, reader: _Reader) -> None:
        """Feed ``reader`` until the final answer to the request just sent is in, or refuse it."""
        reader.start()
        received = head = 0
        while not reader.done:
            data = sock.recv(RECV_SIZE)
            if not data:
                _at_close(reader, received)
                return
            received += len(data)
            if not reader.head_done:
                head += len(data)
            try:
                reader.parser.feed_data(data)
            except _PARSER_ERRORS as ex:
                if not reader.done:
                    why = str(ex) if isinstance(ex, httptools.HttpParserError) else "an upgrade"
                    raise http.client.HTTPException(f"a broken HTTP answer: {why}") from ex
                reader.stray = True  # the answer was whole; what came after it was not HTTP
            if not reader.head_done and head > MAX_HEAD:
                raise http.client.HTTPException(f"a broken HTTP answer: a head over {MAX_HEAD}")
            if reader.length > self.max_answer:
                raise AnswerTooLarge(f"an answer of {reader.length} bytes, over {self.max_answer}")
            if reader.size > self.max_answer:
                raise AnswerTooLarge(f"an answer over {self.max_answer} bytes")

    def _usable(self) -> tuple[socket.socket, _Reader]:
        """The open connection, unless the server closed it while idle; else a fresh one."""
        if self._sock is not None and _dropped(self._sock):
            self.close()
        if self._sock is None or self._reader is None:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.https:
                    context = ssl.create_default_context()  # what HTTPSConnection uses
                    sock = context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self._sock, self._reader = sock, _Reader()
        return self._sock, self._reader


def _head_lines(headers: dict[str, str]) -> bytes:
    """Request header lines, each name and value checked so no line can be smuggled in."""
    lines = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as ex:
        raise ValueError(f"invalid header: {ex}") from None


def _at_close(reader: _Reader, received: int) -> None:
    """The server closed the connection: the end of a body read to the close, or an error."""
    if reader.ends_at_close():
        reader.done, reader.keep_alive = True, False
    elif not received:
        raise http.client.RemoteDisconnected("the server closed the connection without answering")
    else:
        raise http.client.HTTPException("a broken HTTP answer: the connection closed within it")


def _dropped(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable was closed (or spoke out of turn)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
