"""Closing connections without holding the worker's main thread.

A server that closes a connection with unread bytes in its receive buffer
makes the kernel send a reset, which can destroy the answer it just wrote
before the client reads it. So a closing server first shuts its write side
(the client sees the end of the answer) and drains what the client still
sends, for a short while, before it closes for good. gunicorn's threaded
worker does that drain with a blocking read on its main thread: one client
that asks for ``Connection: close`` and then neither reads nor closes stalls
accepting and every parked connection of the worker for up to two seconds,
and forty such clients stalled a server for good. Here the drain waits in the
worker's poller like any idle connection.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import OrderedDict

#: Seconds a closing connection is drained at most before it is closed regardless.
LINGER = 2.0
#: Bytes drained from one closing connection at most (what gunicorn's own close allows).
MAX_DRAIN = 65536
#: Bytes read per drain call.
CHUNK = 4096


class LingeringCloses:
    """Connections whose write side is shut, drained from the poller until the client
    closes, ``MAX_DRAIN`` bytes came, or ``LINGER`` seconds passed."""

    def __init__(self, poller: selectors.BaseSelector, most: int, linger: float = LINGER):
        """``most``: closing connections kept at once; past it the oldest is closed at
        once (a flood of them must not hold descriptors the worker needs)."""
        self._poller = poller
        self._most = max(1, most)
        self._linger = linger
        #: Each closing connection's deadline and the bytes drained from it, oldest first.
        self._closing: OrderedDict[socket.socket, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._closing)

    def close(self, sock: socket.socket) -> None:
        """Shut the write side now; close once the client is done or its time is up."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self._poller.register(sock, selectors.EVENT_READ, self._readable)
        except (OSError, ValueError, KeyError):
            _close(sock)  # already reset, or not a socket the poller takes: nothing to drain
            return
        while len(self._closing) >= self._most:
            self._end(next(iter(self._closing)))
        self._closing[sock] = (time.monotonic() + self._linger, 0)

    def expire(self) -> None:
        """Close those whose time is up (called from the worker's loop, about every second)."""
        now = time.monotonic()
        while self._closing:
            sock, (deadline, _) = next(iter(self._closing.items()))
            if deadline > now:
                return
            self._end(sock)

    def close_all(self) -> None:
        while self._closing:
            self._end(next(iter(self._closing)))

    def _readable(self, sock: socket.socket) -> None:
        """The poller's callback: read what came, and end the connection when it is done."""
        if sock not in self._closing:
            return  # ended meanwhile
        deadline, drained = self._closing[sock]
        while drained < MAX_DRAIN:
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                self._closing[sock] = (deadline, drained)  # its place in line is kept
                return  # all read for now: wait for more, or the end
            except OSError:
                break
            if not data:
                break  # the client closed: done
            drained += len(data)
        self._end(sock)

    def _end(self, sock: socket.socket) -> None:
        self._closing.pop(sock, None)
        try:
            self._poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
