"""A lean keep-alive HTTP/1.1 connection for the client, on the standard library.

Why not ``requests``: a busy runner makes one request per task, and profiling
showed ``requests`` spending ~0.7 ms of CPU per call on this class of machine
(hooks, adapters, cookie jars, header dicts) against ~0.15 ms for
``http.client`` doing the same exchange; on a two-core machine running four
runners and the server, that CPU is the hand-off time between tasks.

What it keeps from ``requests`` as the client used it: one persistent
connection, no proxies or ``.netrc`` from the environment, no redirects
followed, a connect timeout and a read timeout. Like urllib3, it checks before
each reuse that the server has not closed the idle connection (gunicorn closes
idle keep-alive connections after a few seconds) and then opens a new one.
Failures to connect or to exchange are raised as ``OSError`` or
``http.client.HTTPException`` for the caller to map.

The exchange is done here rather than by ``http.client``: its
``HTTPResponse`` builds a new buffered file per answer and parses the headers
with the ``email`` package, and its request side validates and joins header
by header; against a minimal server that was ~270 us of CPU per request on
the 2-core machine, ~100 us here (and ~370 -> ~190 us per round trip). The
reader below keeps one buffered reader for the
connection's life and reads exactly one answer per request (status line,
headers, then a ``Content-Length`` body, a chunked body, or a body that
ends with the connection), with ``http.client``'s limits and exceptions.
Requests go out as one ``sendall`` (headers and body together, as
``http.client`` does for a bytes body), with ``TCP_NODELAY`` set.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import socket
import ssl
from typing import IO, Any
from urllib.parse import urlsplit

#: ``http.client``'s own limits on one line and on the number of header lines.
MAX_LINE = 65536
MAX_HEADERS = 100
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")


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


class Connection:
    """One server, one socket reused across calls; not thread-safe (one per thread)."""

    def __init__(self, url: str, headers: dict[str, str], connect_timeout: float):
        parts = urlsplit(url)
        try:
            port = parts.port  # raises on a port that is not a number
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise http.client.InvalidURL(f"not an http(s) URL: {url!r}")
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError(f"invalid header {name!r}")  # as http.client refuses it
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        default_port = 443 if self.https else 80
        self.port = port or default_port
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        host = f"[{self.host}]" if ":" in self.host else self.host
        host = host if self.port == default_port else f"{host}:{self.port}"
        fixed = {"Host": host, "Accept-Encoding": "identity", "Accept": "application/json"}
        fixed.update(headers)
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._sock: socket.socket | None = None
        self._reader: IO[bytes] | None = None

    def close(self) -> None:
        sock, reader = self._sock, self._reader
        self._sock = self._reader = None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()

    def request(
        self, method: str, path: str, body: Any = None, read_timeout: float = 30.0
    ) -> Response:
        """One exchange; the connection is dropped on any failure so the next call starts clean."""
        target = self.prefix + path
        if _UNSAFE.search(target) or _UNSAFE.search(method):
            raise http.client.InvalidURL(f"can't send {method} {target!r}: control characters")
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed}"
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "Content-Length: 0\r\n"
        try:
            sock, reader = self._usable()
            sock.settimeout(read_timeout)
            sock.sendall(head.encode("latin-1") + b"\r\n" + data)
            answer, will_close = read_response(reader, method)
        except BaseException:
            self.close()
            raise
        if will_close:
            self.close()
        return answer

    def _usable(self) -> tuple[socket.socket, IO[bytes]]:
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
            self._sock, self._reader = sock, sock.makefile("rb")
        return self._sock, self._reader


def read_response(reader: IO[bytes], method: str) -> tuple[Response, bool]:
    """One answer from ``reader``, and whether the server will close the connection after it."""
    while True:
        version, status, reason = _status_line(reader)
        headers = _headers(reader)
        if not 100 <= status < 200:
            break  # an interim answer (100 Continue) is skipped, as http.client does
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    if method == "HEAD" or status in (204, 304):
        return Response(status, reason, headers, b""), will_close
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, reason, headers, _chunked(reader)), will_close
    length = headers.get("content-length")
    if length is None:
        return Response(status, reason, headers, reader.read()), True  # ends with the connection
    try:
        size = int(length)
    except ValueError:
        raise http.client.HTTPException(f"bad Content-Length {length!r}") from None
    if size < 0:
        raise http.client.HTTPException(f"bad Content-Length {length!r}")
    return Response(status, reason, headers, _exactly(reader, size)), will_close


def _line(reader: IO[bytes]) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _status_line(reader: IO[bytes]) -> tuple[str, int, str]:
    line = _line(reader)
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise http.client.BadStatusLine(repr(line))
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise http.client.BadStatusLine(repr(line))
    return parts[0], status, parts[2] if len(parts) > 2 else ""


def _headers(reader: IO[bytes]) -> Headers:
    headers = Headers()
    last = None
    for _ in range(MAX_HEADERS + 1):
        line = _line(reader)
        if line in (b"\r\n", b"\n", b""):
            return headers
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last is not None:  # an obsolete folded line
            headers[last] = f"{headers[last]} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if not sep:
            raise http.client.HTTPException(f"bad header line {text!r}")
        last = name.strip().lower()
        value = value.strip()
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _exactly(reader: IO[bytes], size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise http.client.IncompleteRead(data, size - len(data))
    return data


def _chunked(reader: IO[bytes]) -> bytes:
    parts = []
    while True:
        line = _line(reader)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            break
        parts.append(_exactly(reader, size))
        _exactly(reader, 2)  # the CRLF after each chunk
    while _line(reader) not in (b"\r\n", b"\n", b""):
        pass  # trailers: ignored, as http.client does
    return b"".join(parts)


def _dropped(sock: Any) -> bool:
    """An idle keep-alive socket that is readable was closed (or spoke out of turn)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
