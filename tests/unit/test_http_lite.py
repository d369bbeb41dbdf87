"""The client's HTTP transport (``httptools`` on a socket) against real local HTTP servers.

Each test runs the standard library's HTTP server in a thread (it reads the
requests) and scripts the bytes it answers, request by request, then checks
what the transport made of them: one connection kept alive across calls and
replaced when the server closed it, every way an answer can carry its body,
the size cap, malformed answers refused as ``http.client`` errors, a read
timeout told apart from a refused connection, and redirects never followed.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from stq.worker.http_lite import AnswerTooLarge, Connection, ReadTimeout
from tests.helpers import free_port, http_server, wait_until

#: Script entries: answer and keep the connection; answer then close it; close
#: it without answering; never answer (until the test ends).
CLOSE = "close"
SILENT = "silent"
Answer = bytes | tuple[bytes, str] | None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """What a test server answers, in order, and what it saw."""

    answers: list[Answer | str]
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    #: Released each time the server has shut a connection down (its FIN is on the way).
    closed: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    release: threading.Event = field(default_factory=threading.Event)


class Slot:
    """One server for the whole module; each test gives it a new ``Script``."""

    script = Script([])

    def handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        slot = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn serves

            def setup(self) -> None:
                super().setup()
                slot.script.connections += 1

            def _answer(self) -> None:
                script = slot.script
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                script.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answer = script.answers.pop(0) if script.answers else None
                if answer == SILENT:
                    script.release.wait(10)
                    answer = None
                if isinstance(answer, tuple):
                    self.wfile.write(answer[0])
                    answer = None
                if answer is None:  # close now: shut down so the FIN leaves before we say so
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    script.closed.release()
                    return
                self.wfile.write(answer)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def slots() -> Iterator[list[tuple[str, Slot]]]:
    """Two servers (a test may need a second host), started once for the module."""
    with ExitStack() as stack:
        made = [Slot(), Slot()]
        yield [(stack.enter_context(http_server(slot.handler())), slot) for slot in made]


@pytest.fixture
def serve(slots) -> Iterator[Callable[..., tuple[str, Script]]]:
    """Script the next server: ``serve(answer, ...)`` -> (url, script)."""
    used: list[Script] = []

    def start(*answers: Answer | str) -> tuple[str, Script]:
        url, slot = slots[len(used)]
        slot.script = Script(list(answers))
        used.append(slot.script)
        return url, slot.script

    yield start
    while OPEN:
        OPEN.pop().close()
    for script in used:
        script.release.set()


OPEN: list[Connection] = []


def conn(url: str, max_answer: int | None = None) -> Connection:
    """A client connection with a token, closed when the test ends."""
    extra = {} if max_answer is None else {"max_answer": max_answer}
    OPEN.append(Connection(url, {"Authorization": "Bearer t"}, connect_timeout=5, **extra))
    return OPEN[-1]


def ok(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def chunked(*chunks: bytes, sizes: list[bytes] | None = None) -> bytes:
    """A chunked answer; ``sizes`` replaces the size lines (to break them)."""
    sizes = sizes or [b"%x" % len(c) for c in chunks]
    body = b"".join(s + b"\r\n" + c + b"\r\n" for s, c in zip(sizes, chunks, strict=True))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


def test_one_connection_serves_many_requests_and_sends_each_once(serve) -> None:
    url, script = serve(ok(b'{"a": 1}'), ok(b"[]"), ok(b"{}"))
    c = conn(url)
    first = c.request("POST", "/api/v1/x", {"k": "v"})
    second = c.request("GET", "/api/v1/y")
    third = c.request("POST", "/api/v1/z")
    assert (first.status_code, first.json()) == (200, {"a": 1})
    assert (second.json(), third.json()) == ([], {})
    assert script.connections == 1
    post, get, empty = script.seen
    assert (post.method, post.path, json.loads(post.body)) == ("POST", "/api/v1/x", {"k": "v"})
    assert post.headers["Host"] == url.removeprefix("http://")
    assert post.headers["Authorization"] == "Bearer t"
    assert post.headers["Content-Type"] == "application/json"
    assert (get.method, get.path, get.body) == ("GET", "/api/v1/y", b"")
    assert "Content-Length" not in get.headers
    assert empty.headers["Content-Length"] == "0"  # a POST without a body still says so


def test_a_url_path_prefixes_every_request(serve) -> None:
    url, script = serve(ok(b"{}"))
    conn(url + "/stq/").request("GET", "/api/v1/health")
    assert script.seen[0].path == "/stq/api/v1/health"


def test_a_chunked_answer_is_joined_and_the_connection_kept(serve) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"a"\r\n5\r\n: 12}\r\n0\r\nTrailer: x\r\n\r\n'
    )
    url, script = serve(answer, ok(b"{}"))
    c = conn(url)
    assert c.request("GET", "/a").json() == {"a": 12}
    assert c.request("GET", "/b").json() == {}
    assert script.connections == 1


def test_a_body_without_length_ends_with_the_connection(serve) -> None:
    url, script = serve(
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", CLOSE), ok(b"{}")
    )
    c = conn(url)
    assert c.request("GET", "/a").text == "all of it"
    assert c.request("GET", "/b").json() == {}
    assert script.connections == 2


def test_no_content_has_no_body_and_keeps_the_connection(serve) -> None:
    url, script = serve(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", ok(b"{}"))
    c = conn(url)
    answer = c.request("POST", "/claim", {"wait": 0})
    assert (answer.status_code, answer.content) == (204, b"")
    assert c.request("GET", "/b").json() == {}
    assert script.connections == 1


def test_connection_close_is_honoured(serve) -> None:
    url, script = serve(ok(b"{}", "Connection: close"), ok(b"{}"))
    c = conn(url)
    c.request("GET", "/a")
    c.request("GET", "/b")
    assert script.connections == 2


def test_an_interim_100_continue_is_skipped(serve) -> None:
    url, _ = serve(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"x": 1}'))
    assert conn(url).request("POST", "/a", {}).json() == {"x": 1}


def test_headers_ignore_case_and_repeats_are_joined(serve) -> None:
    url, _ = serve(ok(b"", "Location: /else", "X-Two: a", "X-Two: b", status="302 Found"))
    answer = conn(url).request("GET", "/a")
    assert (answer.status_code, answer.reason) == (302, "Found")
    assert answer.headers.get("location") == answer.headers.get("LOCATION") == "/else"
    assert answer.headers.get("x-two") == "a, b"
    assert answer.headers.get("missing") is None


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(serve) -> None:
    url, script = serve((ok(b"{}"), CLOSE), ok(b'{"again": true}'))
    c = conn(url)
    c.request("GET", "/a")
    assert script.closed.acquire(timeout=10)  # the server dropped it while the client was idle
    assert c.request("GET", "/b").json() == {"again": True}
    assert script.connections == 2
    assert [s.path for s in script.seen] == ["/a", "/b"]  # /b was sent once, on the new one


def test_bytes_beyond_an_answer_never_pass_for_the_next_one(serve) -> None:
    stray = ok(b'{"stray": true}')
    url, script = serve(ok(b"{}") + stray, ok(b'{"real": true}'))
    c = conn(url)
    assert c.request("GET", "/a").json() == {}
    assert c.request("GET", "/b").json() == {"real": True}
    assert script.connections == 2


def test_bytes_beyond_an_answer_that_are_not_http_drop_the_connection(serve) -> None:
    url, script = serve(ok(b"{}") + b"NOT HTTP\r\n\r\n", ok(b'{"real": true}'))
    c = conn(url)
    assert c.request("GET", "/a").json() == {}  # the answer was whole before the junk
    assert c.request("GET", "/b").json() == {"real": True}
    assert script.connections == 2


def test_header_values_lose_surrounding_whitespace(serve) -> None:
    url, _ = serve(ok(b"{}", "X-Pad: \t spaced out \t "))
    assert conn(url).request("GET", "/a").headers.get("x-pad") == "spaced out"


def test_head_is_refused_before_anything_is_sent(serve) -> None:
    url, script = serve(ok(b"{}"))
    c = conn(url)
    with pytest.raises(ValueError, match="HEAD"):
        c.request("HEAD", "/a")  # its answer has a length but no body: never sent
    assert c.request("GET", "/b").json() == {}
    assert [s.path for s in script.seen] == ["/b"]


def test_a_connection_closed_instead_of_answering_is_an_error(serve) -> None:
    url, script = serve(ok(b"{}"), None, ok(b'{"again": true}'))
    c = conn(url)
    c.request("GET", "/a")
    with pytest.raises(http.client.RemoteDisconnected):
        c.request("GET", "/b")  # closed instead of answering: an error, never a retry
    assert c.request("GET", "/c").json() == {"again": True}
    assert script.connections == 2
    assert [s.path for s in script.seen] == ["/a", "/b", "/c"]


@pytest.mark.parametrize(
    "answer",
    [
        chunked(b"x" * 5, sizes=[b"-5"]),
        chunked(b"x" * 16, sizes=[b"0x10"]),
        chunked(b"x" * 5, sizes=[b"+5"]),
        chunked(b"x" * 16, sizes=[b"1_0"]),
        chunked(b"x" * 5, sizes=[b" 5"]),
        chunked(b"x" * 5, sizes=[b"5 junk"]),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nxxxxxNOPE",  # no CRLF after
    ],
    ids=["minus", "0x", "plus", "underscore", "space", "junk", "no-crlf"],
)
def test_a_malformed_chunked_answer_is_refused(serve, answer: bytes) -> None:
    url, _ = serve((answer, CLOSE), ok(b"{}"))
    c = conn(url)
    with pytest.raises(http.client.HTTPException, match="broken HTTP answer"):
        c.request("GET", "/a")
    assert c.request("GET", "/b").json() == {}  # the broken connection was dropped


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then closed
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 300_000 + b"\r\n\r\n",  # a head far over 64 KiB
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nxx",  # then closed
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=[
        "short",
        "not-http",
        "status",
        "negative",
        "plus",
        "two-lengths",
        "colon",
        "huge-head",
        "chunked-short",
        "upgrade",
    ],
)
def test_broken_answers_raise_http_client_errors(serve, answer: bytes) -> None:
    url, _ = serve((answer, CLOSE), ok(b"{}"))  # closed after it: a short body ends there
    c = conn(url)
    with pytest.raises(http.client.HTTPException):
        c.request("GET", "/a")
    assert c.request("GET", "/b").json() == {}


def test_a_length_over_the_cap_is_refused_before_its_body_is_read(serve) -> None:
    # The body never comes: the transport must not wait for it, let alone hold it.
    url, _ = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n", ok(b"{}"))
    c = conn(url, max_answer=1000)
    started = time.monotonic()
    with pytest.raises(AnswerTooLarge, match="1000000000000 bytes"):
        c.request("GET", "/a", read_timeout=5)
    assert time.monotonic() - started < 4  # refused from the head, not after a read timeout
    assert c.request("GET", "/b").json() == {}


@pytest.mark.parametrize(
    "answer",
    [
        chunked(b"x" * 600, b"y" * 600),
        (b"HTTP/1.0 200 OK\r\n\r\n" + b"z" * 1500, CLOSE),  # read to the close
    ],
    ids=["chunked", "to-close"],
)
def test_a_body_growing_over_the_cap_is_refused(serve, answer: Answer) -> None:
    url, _ = serve(answer, ok(b"{}"))
    c = conn(url, max_answer=1000)
    with pytest.raises(AnswerTooLarge, match="over 1000 bytes"):
        c.request("GET", "/a")
    assert c.request("GET", "/b").json() == {}


def test_an_answer_at_the_cap_is_read_whole(serve) -> None:
    url, _ = serve(ok(b"x" * 1000), chunked(b"y" * 500, b"z" * 500))
    c = conn(url, max_answer=1000)
    assert c.request("GET", "/a").content == b"x" * 1000
    assert c.request("GET", "/b").content == b"y" * 500 + b"z" * 500


def test_a_read_timeout_is_not_a_refused_connection(serve) -> None:
    url, script = serve(SILENT, ok(b"{}"))
    c = conn(url)
    started = time.monotonic()
    with pytest.raises(ReadTimeout) as caught:
        c.request("POST", "/a", {"x": 1}, read_timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    wait_until(lambda: script.seen, what="the request at the server")
    assert script.seen[0].path == "/a"  # it reached the server: that is why it must differ
    assert c.request("GET", "/b").json() == {}  # a new connection after the abandoned one
    refused = conn(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionRefusedError) as nobody:
        refused.request("GET", "/a")
    assert not isinstance(nobody.value, TimeoutError)
    assert isinstance(caught.value, TimeoutError)


def test_a_redirect_is_returned_and_the_token_goes_nowhere_else(serve) -> None:
    elsewhere, other = serve(ok(b"{}"))
    url, script = serve(ok(b"", f"Location: {elsewhere}/steal", status="302 Found"))
    answer = conn(url).request("GET", "/api/v1/workflows/w1")
    assert (answer.status_code, answer.headers.get("Location")) == (302, f"{elsewhere}/steal")
    assert [s.headers["Authorization"] for s in script.seen] == ["Bearer t"]
    assert (other.connections, other.seen) == (0, [])


def test_nothing_can_smuggle_a_line_into_the_request(serve) -> None:
    url, script = serve(ok(b"{}"))
    c = conn(url)
    with pytest.raises(http.client.InvalidURL):
        c.request("GET", "/a b\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        Connection(url, {"Authorization": "Bearer t\r\nX-Evil: 1"}, 5)
    assert c.request("GET", "/fine").json() == {}
    assert [s.path for s in script.seen] == ["/fine"]


@pytest.mark.parametrize("url", ["ftp://host/", "http://", "http://host:port/", "nonsense"])
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(http.client.InvalidURL):
        Connection(url, {}, 5)
