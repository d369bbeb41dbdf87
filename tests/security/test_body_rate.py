"""The body-rate rule and the token before the body, on real sockets and real gunicorns.

A body must arrive at 1 KiB/s or more after its first seconds (10 in use, 1
here), under any gunicorn worker: a trickle is cut (408, connection closed)
soon after its deadline, a client a little faster than the rate is served
however long it takes, and a long poll after a small body is not cut. A
refused token is answered before the body it announces arrives.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from stq.api.body_rate import BodyRate, PacedInput, Watchdog
from stq.api.launch import WORKER_CLASS
from stq.errors import RequestTimeout
from tests.helpers import LiveServer, wait_until
from tests.security import short_grace

GRACE = short_grace.GRACE
TOKEN = "rate-tok-5e1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KIB = 1024


class Trickle:
    """Sends ``data`` from a thread, ``step`` bytes every ``interval`` s, until done or cut."""

    def __init__(self, sock: socket.socket, data: bytes, step: int, interval: float):
        self.sock, self.data, self.step, self.interval = sock, data, step, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)

    def __enter__(self) -> Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _send(self) -> None:
        for start in range(0, len(self.data), self.step):
            if self.stop.wait(self.interval if start else 0):
                return
            try:
                self.sock.sendall(self.data[start : start + self.step])
            except OSError:
                return  # cut: what the server wanted


# --- the rule itself, on a socket pair ----------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        yield left, right


def paced(sock: socket.socket, length: int, watchdog: Watchdog, grace: float) -> PacedInput:
    """The server's side: a buffered reader whose ``read(n)`` blocks for n bytes, as gunicorn's."""
    return PacedInput(sock.makefile("rb"), sock, length, BodyRate(grace, 1000), watchdog)


def test_a_trickle_is_cut_at_its_deadline(pair) -> None:
    server, client = pair
    watchdog = Watchdog()
    body = paced(server, 1000, watchdog, grace=0.3)
    started = time.monotonic()
    with Trickle(client, b"x" * 1000, step=1, interval=0.1), pytest.raises(RequestTimeout):
        body.read()
    assert 0.3 <= time.monotonic() - started < 1.5
    assert not body.complete
    assert server.recv(10) == b""  # the reading side is shut: nothing more is read
    assert watchdog.watched == 0


def test_a_body_faster_than_the_rate_is_read_whole_past_the_grace(pair) -> None:
    """4,000 B/s against 1,000 B/s for 1.5 s, five times the grace."""
    server, client = pair
    watchdog = Watchdog()
    data = bytes(range(256)) * 24  # 6,144 bytes
    body = paced(server, len(data), watchdog, grace=0.3)
    with Trickle(client, data, step=200, interval=0.05):
        assert body.read() == data
    assert body.complete and watchdog.watched == 0


def test_a_chunked_body_is_read_to_its_end(pair) -> None:
    """No length: the body ends where the stream does (gunicorn's last chunk)."""
    server, client = pair
    watchdog = Watchdog()
    body = PacedInput(server.makefile("rb"), server, None, BodyRate(0.3, 1000), watchdog)
    client.sendall(b"c" * 3000)
    client.shutdown(socket.SHUT_WR)
    assert body.read() == b"c" * 3000
    assert body.complete and watchdog.watched == 0
    assert body.read() == b""


def test_the_watchdog_thread_lives_only_while_a_body_is_read(pair) -> None:
    server, client = pair
    watchdog = Watchdog()
    assert not watchdog.running
    client.sendall(b"a" * 200)
    body = paced(server, 200, watchdog, grace=0.2)
    assert body.read(64 * KIB) == b"a" * 200
    assert body.complete and watchdog.watched == 0  # a long poll after it is never cut
    wait_until(lambda: not watchdog.running, timeout=5, what="the watchdog thread to end")


class Recorded:
    """A stream that records the size of every read asked of it."""

    def __init__(self, stream: Any):
        self.stream, self.asked = stream, []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self.stream.read(size)


def test_reads_are_cut_small_only_until_the_client_has_shown_its_pace(pair) -> None:
    """A fast client's body is soon read 64 KiB at a time, as without the rule."""
    server, client = pair
    data = b"z" * (1024 * KIB)
    stream = Recorded(server.makefile("rb"))
    body = PacedInput(stream, server, len(data), BodyRate(10, 1000), Watchdog())
    sender = threading.Thread(target=client.sendall, args=(data,), daemon=True)
    sender.start()
    read = b"".join(iter(lambda: body.read(64 * KIB), b""))
    sender.join(10)
    assert read == data
    assert 4900 <= stream.asked[0] <= 5000  # half of what 10 s at 1,000 B/s owe
    assert stream.asked[1] > stream.asked[0] and len(stream.asked) < 40
    assert stream.asked.count(64 * KIB) >= 8


# --- under real gunicorns -------------------------------------------------------------


THREADED = [WORKER_CLASS, "gthread"]
THREADED_IDS = ["stq-server", "gthread"]


@pytest.fixture(scope="module", params=[*THREADED, "sync"], ids=[*THREADED_IDS, "sync"])
def server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[LiveServer]:
    """One worker process, a token, and a 1 s body grace."""
    folder: Path = tmp_path_factory.mktemp("rate")
    live = LiveServer(
        db=folder / "stq.db",
        workers=1,
        worker_class=request.param,
        env={"STQ_TOKEN": TOKEN},
        extra_args=short_grace.ARGS,
    ).start()
    try:
        yield live
    finally:
        live.stop()


def head(path: str, length: int | None, token: str = TOKEN, **more: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Authorization: Bearer {token}"]  # fmt: skip
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    lines += [f"{name}: {value}" for name, value in more.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(sock: socket.socket) -> tuple[int, dict, float]:
    """(status, JSON body, seconds it took) of the answer read with the standard parser."""
    started = time.monotonic()
    resp = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    resp.begin()
    body = resp.read()
    return resp.status, json.loads(body) if body else {}, time.monotonic() - started


def closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (within 5 s)."""
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:  # closed with the client's bytes unread: also closed
        return True


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GRACE + 10)


def workflows(server: LiveServer) -> list:
    answer = requests.get(f"{server.url}/api/v1/workflows", headers=AUTH, timeout=10)
    return answer.json()["workflows"]


def nothing_claimable(server: LiveServer) -> None:
    """Cancel what earlier tests on this server submitted."""
    for workflow in workflows(server):
        url = f"{server.url}/api/v1/workflows/{workflow['id']}/cancel"
        assert requests.post(url, headers=AUTH, timeout=10).status_code == 200


def document(size: int) -> bytes:
    doc = {"name": "w", "description": "", "tasks": {"a": {"command": "true"}}}
    doc["description"] = "d" * (size - len(json.dumps(doc).encode()))
    return json.dumps(doc).encode()


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_at_one_byte_a_second_is_cut(server: LiveServer, framing: str) -> None:
    data = document(200)
    with connect(server) as sock:
        length = len(data) if framing == "length" else None
        sock.sendall(head("/api/v1/workflows", length))
        if framing == "chunked":  # one byte per chunk: b"1\r\nX\r\n"
            data = b"".join(b"1\r\n%c\r\n" % byte for byte in data)
            step = 6
        else:
            step = 1
        # A byte every 0.75 s, so none lands at the instant the 1 s grace ends: one that
        # does is left unread by the cut, and gunicorn then reads it as the start of a
        # next request (answering a 400 after the 408) before it closes.
        with Trickle(sock, data, step=step, interval=0.75):
            status, body, seconds = answer(sock)
            assert closed(sock)
    assert status == 408, body
    assert body["error"]["code"] == "request_timeout"
    assert GRACE - 0.1 <= seconds <= GRACE + 2.0
    assert workflows(server) == []


@pytest.mark.slow
def test_a_body_at_2_kib_per_second_past_the_grace_is_served(server: LiveServer) -> None:
    data = document(6 * KIB)  # three seconds of it, three times the grace
    with connect(server) as sock:
        sock.sendall(head("/api/v1/workflows", len(data)))
        with Trickle(sock, data, step=205, interval=0.1):
            status, body, seconds = answer(sock)
    assert status == 201, body
    assert seconds >= 2.5
    assert [w["id"] for w in workflows(server)] == [body["id"]]


@pytest.mark.slow
@pytest.mark.parametrize("server", THREADED, indirect=True, ids=THREADED_IDS)
def test_a_long_poll_after_a_small_body_is_not_cut(server: LiveServer) -> None:
    """The rule paces the body alone: a claim waits its 2 s, twice the grace.

    (A sync worker caps a claim's wait at 1 s, so it has no long poll to show.)
    """
    nothing_claimable(server)
    data = b'{"runner": "r", "wait": 2}'
    with connect(server) as sock:
        sock.sendall(head("/api/v1/attempts/claim", len(data)) + data)
        status, _, seconds = answer(sock)
    assert status == 204 and seconds >= 1.9


@pytest.mark.slow
def test_a_refused_token_is_answered_before_the_body_it_announces(server: LiveServer) -> None:
    """10 MiB announced, a little sent: 401 at once (waiting would have been a 408 at 1 s).

    Then gunicorn reads at most 64 KiB more of the body and closes the connection.
    """
    with connect(server) as sock:
        sock.sendall(head("/api/v1/workflows", 10 * 1024 * KIB, token="wrong"))
        sock.sendall(b"{" * 1000)  # a start of the body, as a client streaming it would
        status, body, seconds = answer(sock)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert seconds < GRACE / 2
        try:
            sock.sendall(b" " * (70 * KIB))
        except OSError:
            pass  # closed already
        assert closed(sock)
