"""Closing connections from the poller (``stq.api.lingering``): the client sees the end of
the answer at once, what it still sends is drained, and nothing waits on it."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from stq.api.lingering import MAX_DRAIN, LingeringCloses

Poller = selectors.BaseSelector


@pytest.fixture
def poller() -> Iterator[selectors.BaseSelector]:
    with selectors.DefaultSelector() as sel:
        yield sel


def pair() -> tuple[socket.socket, socket.socket]:
    """(server end, client end) of a real TCP connection on the loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    return server, client


def dispatch(poller: selectors.BaseSelector, timeout: float = 0.5) -> None:
    for key, _ in poller.select(timeout):
        key.data(key.fileobj)


def test_the_client_sees_the_end_at_once_and_the_close_follows_its_own(poller: Poller) -> None:
    server, client = pair()
    closing = LingeringCloses(poller, most=10)
    server.sendall(b"answer")
    closing.close(server)
    assert client.recv(100) == b"answer" and client.recv(100) == b""  # FIN came at once
    client.sendall(b"more of a request")  # read and dropped, not left to reset the answer
    dispatch(poller)
    assert len(closing) == 1
    client.close()
    dispatch(poller)
    assert len(closing) == 0 and server.fileno() == -1


def test_a_client_that_holds_on_is_closed_when_its_time_is_up(poller: Poller) -> None:
    server, client = pair()
    closing = LingeringCloses(poller, most=10, linger=0.2)
    closing.close(server)
    closing.expire()
    assert len(closing) == 1
    time.sleep(0.25)  # the linger itself is what is tested
    closing.expire()
    assert len(closing) == 0 and server.fileno() == -1
    client.close()


def test_a_client_that_keeps_sending_is_drained_only_so_far(poller: Poller) -> None:
    server, client = pair()
    closing = LingeringCloses(poller, most=10)
    closing.close(server)
    client.setblocking(False)
    sent, deadline = 0, time.monotonic() + 10
    while len(closing) and time.monotonic() < deadline:
        try:
            sent += client.send(b"x" * 65536)
        except (BlockingIOError, ConnectionError):
            pass
        dispatch(poller, 0.05)
    assert len(closing) == 0 and sent >= MAX_DRAIN
    client.close()


def test_past_the_most_the_oldest_is_closed_at_once(poller: Poller) -> None:
    pairs = [pair() for _ in range(3)]
    closing = LingeringCloses(poller, most=2)
    for server, _ in pairs:
        closing.close(server)
    assert len(closing) == 2
    assert [server.fileno() == -1 for server, _ in pairs] == [True, False, False]
    closing.close_all()
    assert all(server.fileno() == -1 for server, _ in pairs)
    for _, client in pairs:
        client.close()
