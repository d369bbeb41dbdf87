"""Hostile clients against a live server, started as users start it.

Each reproduces an attack found by probing the server from outside: a body
announced and never sent, heads trickled a byte at a time, connections opened
and left silent, clients that ask for a close and then hold on, a refused
request that keeps sending, malformed and oversized heads, and (with no
token) requests a web page could make. Each asserts the answer (or the
close), that the server's memory comes back within 10% of where it started,
and, where the server holds slow clients apart from the rest (``stq
server``), that health and an authenticated call answer within 100 ms
throughout. Plain ``gunicorn stq.api:app`` runs one sync worker:
a slow client has it to itself, so there only the answers and the memory are
asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stq.api.lingering import LINGER
from stq.api.serving import HEAD_TIMEOUT
from stq.settings import BODY_GRACE
from tests.helpers import wait_until
from tests.hostile.support import (
    MAX_CONNECTIONS,
    TOKEN,
    Prober,
    Target,
    closed_or_answered,
    connect,
)

pytestmark = pytest.mark.slow
KINDS = ["stq-server", "plain-gunicorn"]


def started(kind: str, tmp_path: Path, token: str | None = TOKEN) -> Iterator[Target]:
    target = Target(kind, tmp_path, token).start()
    try:
        target.warm()
        yield target
    finally:
        target.stop()


@pytest.fixture(params=KINDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    yield from started(request.param, tmp_path)


@pytest.fixture
def stq_server(tmp_path: Path) -> Iterator[Target]:
    yield from started("stq-server", tmp_path)


def head(target: Target, method: str, path: str, *lines: str) -> bytes:
    fields = [f"Host: 127.0.0.1:{target.port}", *lines]
    return (
        f"{method} {path} HTTP/1.1\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
    ).encode()


def memory_comes_back(target: Target, start: float) -> None:
    wait_until(
        lambda: target.rss_mib() <= start * 1.10,
        timeout=30,
        interval=0.5,
        what=f"the server's memory back within 10% of {start:.0f} MiB",
    )


def test_announced_bodies_never_sent_hold_no_memory_and_are_cut(target: Target) -> None:
    """A 70-byte head announcing 16 MiB, then silence: nothing is allocated for it."""
    start = target.rss_mib()
    count = 32 if target.holds_slow_clients else 1
    announce = head(
        target,
        "POST",
        "/api/v1/workflows",
        f"Authorization: Bearer {TOKEN}",
        "Content-Type: application/json",
        "Content-Length: 16777216",
    )
    sockets = [connect(target) for _ in range(count)]
    with Prober(target) as prober:
        for sock in sockets:
            sock.sendall(announce)
        time.sleep(1)  # the heads are read and the bodies awaited (nothing to poll for)
        # A thread and a store connection each at most, never the 16 MiB announced.
        assert target.rss_mib() - start < count * 2 + 8
        for sock in sockets:
            answer = closed_or_answered(sock, BODY_GRACE + 10)
            assert answer is not None, "a silent body was waited on past its deadline"
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
            sock.close()
    if target.holds_slow_clients:
        prober.assert_served()
    memory_comes_back(target, start)


def test_a_refused_request_that_keeps_sending_is_closed(target: Target) -> None:
    """A wrong token on a 256 MiB body: the 401 comes first, then the server stops reading."""
    start = target.rss_mib()
    with connect(target) as sock:
        sock.sendall(
            head(
                target,
                "POST",
                "/api/v1/workflows",
                "Authorization: Bearer wrong",
                "Content-Type: application/json",
                f"Content-Length: {256 * 1024 * 1024}",
            )
        )
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 401")  # before any of the body
        sent, stopped = 0, None
        deadline = time.monotonic() + 20
        chunk = b"x" * 65536
        while time.monotonic() < deadline:
            try:
                sent += sock.send(chunk)
            except (TimeoutError, OSError) as ex:
                stopped = ex
                break
    assert stopped is not None, f"the server kept reading: {sent} bytes"
    assert sent < 32 * 1024 * 1024  # what the kernel's buffers hold, no more
    memory_comes_back(target, start)


def test_bare_line_feeds_are_answered_400_at_once(target: Target) -> None:
    with connect(target) as sock:
        started_at = time.monotonic()
        sock.sendall(b"GET /api/v1/health HTTP/1.1\nHost: 127.0.0.1\n\n")
        answer = closed_or_answered(sock, 5)
    assert answer is not None and answer.startswith(b"HTTP/1.1 400")
    assert time.monotonic() - started_at < 2


@pytest.mark.parametrize(
    ("lines", "statuses"),
    [
        (["Content-Type: application/json", "Content-Length: 20971520"], {413}),
        ([f"X-Field-{i}: v" for i in range(150)], {400, 431}),
        (["X-Big: " + "v" * 9000], {400, 431}),
    ],
    ids=["body-over-16-MiB", "150-header-fields", "9000-byte-header"],
)
def test_oversized_requests_are_refused_before_reading(
    target: Target, lines: list[str], statuses: set[int]
) -> None:
    request = head(target, "POST", "/api/v1/workflows", f"Authorization: Bearer {TOKEN}", *lines)
    with connect(target) as sock:
        sock.sendall(request)
        # Answered at once; closed once gunicorn's drain of the unsent body gives up (5 s).
        answer = closed_or_answered(sock, 8)
    assert answer is not None
    assert int(answer.split(b" ", 2)[1]) in statuses, answer[:80]


def test_a_uri_past_the_limit_is_414(target: Target) -> None:
    with connect(target) as sock:
        sock.sendall(head(target, "GET", "/" + "x" * 5000))
        answer = closed_or_answered(sock, 5)
    assert answer is not None and answer.startswith(b"HTTP/1.1 414")


def test_heads_trickled_a_byte_at_a_time_are_cut_and_stall_nobody(stq_server: Target) -> None:
    """300 connections each sending its head one byte a second, for past the head deadline."""
    target = stq_server
    start = target.rss_mib()
    sockets = [connect(target) for _ in range(300)]
    request = head(target, "GET", "/api/v1/health", "X-Pad: " + "a" * 100)
    open_ones = list(sockets)
    with Prober(target) as prober:
        began = time.monotonic()
        for i in range(int(HEAD_TIMEOUT) + 8):
            for sock in list(open_ones):
                try:
                    sock.send(request[i : i + 1])
                except OSError:
                    open_ones.remove(sock)
            if not open_ones:
                break
            time.sleep(max(0.0, began + i + 1 - time.monotonic()))  # the pace is the attack
        still_open = []
        for sock in open_ones:
            if closed_or_answered(sock, 3) is None:
                still_open.append(sock)
    for sock in sockets:
        sock.close()
    assert not still_open, f"{len(still_open)} trickled heads outlived the deadline"
    prober.assert_served()
    memory_comes_back(target, start)


def test_silent_connections_lock_nobody_out(stq_server: Target) -> None:
    """As many connections as the suite may open, each silent: runners still get answers."""
    target = stq_server
    start = target.rss_mib()
    sockets = [connect(target) for _ in range(MAX_CONNECTIONS - 10)]
    try:
        with Prober(target) as prober:
            time.sleep(3)  # held open while the prober works (nothing else to wait for)
        prober.assert_served()
    finally:
        for sock in sockets:
            sock.close()
    memory_comes_back(target, start)


def test_clients_that_ask_to_close_and_then_hold_on_stall_nobody(stq_server: Target) -> None:
    """Requests with ``Connection: close`` whose clients then neither read nor close: the
    server drains such a connection before closing it, and must not wait on it meanwhile."""
    target = stq_server
    start = target.rss_mib()
    request = head(target, "GET", "/api/v1/health", "Connection: close")
    sockets = [connect(target) for _ in range(100)]
    try:
        with Prober(target) as prober:
            began = time.monotonic()
            for i, sock in enumerate(sockets):
                sock.sendall(request)
                time.sleep(max(0.0, began + (i + 1) * 0.03 - time.monotonic()))  # the pace
            for sock in sockets:
                answer = closed_or_answered(sock, LINGER + 5)
                assert answer is not None, "a closing connection was kept past its linger"
                assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        prober.assert_served()
    finally:
        for sock in sockets:
            sock.close()
    memory_comes_back(target, start)


@pytest.mark.parametrize("kind", KINDS)
def test_with_no_token_a_web_page_cannot_drive_the_server(kind: str, tmp_path: Path) -> None:
    for target in started(kind, tmp_path, token=None):
        here = f"127.0.0.1:{target.port}"
        body = b'{"name": "evil", "tasks": {"a": {"command": "touch pwned"}}}'
        cases = [
            ({"Content-Type": "text/plain"}, 415),
            ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403),
            ({"Content-Type": "application/json", "Origin": "null"}, 403),
            ({"Content-Type": "application/json", "Host": "rebind.evil.example"}, 421),
        ]
        for headers, status in cases:
            got, _ = target.request("POST", "/api/v1/workflows", body, headers)
            assert got == status, (headers, got)
        got, _ = target.request(
            "GET", "/api/v1/workflows", headers={"Origin": "https://evil.example"}
        )
        assert got == 403
        listed, _ = target.request("GET", "/api/v1/workflows")
        assert listed == 200
        same_origin = {"Content-Type": "application/json", "Origin": f"http://{here}"}
        got, _ = target.request("POST", "/api/v1/workflows", body, same_origin)
        assert got == 201  # the dashboard's own page, and curl, still work
        assert not (tmp_path / "pwned").exists()
