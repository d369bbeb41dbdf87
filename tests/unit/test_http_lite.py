"""The lean HTTP/1.1 client against a scripted server on a real socket.

Each test scripts the bytes the server answers, request by request, and
checks what the client made of them and what it sent: one request per
exchange, the connection kept or dropped as the answer says, every way an
answer can carry its body, and ``http.client``'s exceptions for broken ones.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from stq.http_lite import Connection

CLOSE = "close"
Answer = bytes | tuple[bytes, str] | None


class Scripted:
    """A loopback server answering each request with the next scripted bytes.

    ``None`` in the script closes the connection instead of answering;
    ``(answer, CLOSE)`` closes it right after answering.
    """

    def __init__(self, script: list[Answer]):
        self.script = list(script)
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.accepts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.script:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepts += 1
            with conn, conn.makefile("rb") as reader:
                self._exchange(reader, conn)

    def _exchange(self, reader, conn: socket.socket) -> None:
        while self.script:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = reader.readline()
                if not line:
                    return
                head += line
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.requests.append((head, reader.read(length)))
            answer = self.script.pop(0)
            if answer is None:
                return
            if isinstance(answer, tuple):
                conn.sendall(answer[0])
                return
            conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()


OPEN: list[Connection] = []


@pytest.fixture
def serve() -> Iterator:
    servers: list[Scripted] = []

    def start(*script: Answer) -> Scripted:
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield start
    while OPEN:
        OPEN.pop().close()
    for server in servers:
        server.close()


def ok(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def conn(url: str) -> Connection:
    """A client connection, closed when the test ends."""
    OPEN.append(Connection(url, {"Authorization": "Bearer t"}, connect_timeout=5))
    return OPEN[-1]


def test_one_connection_serves_many_requests_and_sends_each_once(serve) -> None:
    server = serve(ok(b'{"a": 1}'), ok(b"[]"))
    c = conn(server.url)
    first = c.request("POST", "/api/v1/x", {"k": "v"})
    second = c.request("GET", "/api/v1/y")
    assert (first.status_code, first.json(), second.json()) == (200, {"a": 1}, [])
    assert server.accepts == 1
    head, body = server.requests[0]
    assert head.startswith(b"POST /api/v1/x HTTP/1.1\r\n")
    for line in (b"Host: 127.0.0.1:", b"Authorization: Bearer t", b"Content-Length: 10"):
        assert line in head
    assert json.loads(body) == {"k": "v"}
    assert server.requests[1][0].startswith(b"GET /api/v1/y HTTP/1.1\r\n")


def test_a_chunked_answer_is_joined_and_the_connection_kept(serve) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n5\r\n: 12}\r\n0\r\nTrailer: x\r\n\r\n'
    )
    server = serve(chunked, ok(b"{}"))
    c = conn(server.url)
    assert c.request("GET", "/a").json() == {"a": 12}
    assert c.request("GET", "/b").json() == {}
    assert server.accepts == 1


def test_a_body_without_length_ends_with_the_connection(serve) -> None:
    server = serve(
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", CLOSE), ok(b"{}")
    )
    c = conn(server.url)
    answer = c.request("GET", "/a")
    assert answer.text == "all of it"
    assert c.request("GET", "/b").json() == {}
    assert server.accepts == 2


def test_no_content_has_no_body_and_keeps_the_connection(serve) -> None:
    server = serve(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", ok(b"{}"))
    c = conn(server.url)
    answer = c.request("POST", "/claim", {"wait": 0})
    assert (answer.status_code, answer.content) == (204, b"")
    assert c.request("GET", "/b").json() == {}
    assert server.accepts == 1


def test_connection_close_is_honoured(serve) -> None:
    server = serve(ok(b"{}", "Connection: close"), ok(b"{}"))
    c = conn(server.url)
    c.request("GET", "/a")
    c.request("GET", "/b")
    assert server.accepts == 2


def test_an_interim_100_continue_is_skipped(serve) -> None:
    server = serve(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"x": 1}'))
    assert conn(server.url).request("POST", "/a", {}).json() == {"x": 1}


def test_headers_ignore_case_and_repeats_are_joined(serve) -> None:
    server = serve(ok(b"", "Location: /else", "X-Two: a", "X-Two: b", status="302 Found"))
    answer = conn(server.url).request("GET", "/a")
    assert (answer.status_code, answer.reason) == (302, "Found")
    assert answer.headers.get("location") == answer.headers.get("LOCATION") == "/else"
    assert answer.headers.get("x-two") == "a, b"
    assert answer.headers.get("missing") is None


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(serve) -> None:
    server = serve((ok(b"{}"), CLOSE), ok(b'{"again": true}'))
    c = conn(server.url)
    c.request("GET", "/a")
    time.sleep(0.1)  # the server's FIN arrives while the connection is idle
    assert c.request("GET", "/b").json() == {"again": True}
    assert server.accepts == 2
    assert len(server.requests) == 2  # /b was sent once, on the new connection


def test_a_connection_closed_instead_of_answering_is_an_error(serve) -> None:
    server = serve(ok(b"{}", "Connection: keep-alive"), None, ok(b'{"again": true}'))
    c = conn(server.url)
    c.request("GET", "/a")
    with pytest.raises(http.client.RemoteDisconnected):
        c.request("GET", "/b")  # closed instead of answering: an error, never a retry
    assert c.request("GET", "/c").json() == {"again": True}
    assert server.accepts == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
        (b"SMTP ready\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 2xx OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
    ],
)
def test_broken_answers_raise_http_client_errors(serve, answer: bytes, error: type) -> None:
    server = serve((answer, CLOSE), ok(b"{}"))  # closed after it: a short body ends there
    c = conn(server.url)
    with pytest.raises(error):
        c.request("GET", "/a")
    assert c.request("GET", "/b").json() == {}  # the broken connection was dropped


def test_an_unreachable_server_is_an_os_error(serve) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
    with pytest.raises(OSError):
        conn(f"http://127.0.0.1:{port}").request("GET", "/a")


def test_nothing_can_smuggle_a_line_into_the_request(serve) -> None:
    c = conn("http://127.0.0.1:9")
    with pytest.raises(http.client.InvalidURL):
        c.request("GET", "/a b\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        Connection("http://127.0.0.1:9", {"Authorization": "Bearer t\r\nX-Evil: 1"}, 5)


@pytest.mark.parametrize("url", ["ftp://host/", "http://", "http://host:port/", "nonsense"])
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(http.client.InvalidURL):
        Connection(url, {}, 5)
