"""A TCP proxy on 127.0.0.1 that loses answers on purpose, for clients that must retry.

It moves bytes and nothing else (no HTTP is read here): each accepted
connection gets the next step of a plan, and connections past the plan are
forwarded as they are.

- ``forward``: both ways, as if the proxy were not there.
- ``swallow``: the request reaches the server (which carries it out), its answer
  is thrown away: to the client, a server that took the request and never
  answered. With no upstream at all, the request is read and never answered.
- ``drop``: the connection is closed at once, nothing read or sent on.
- ``cut``: forwarded for ``CUT_AFTER`` seconds, then closed both ways, whatever
  is under way: a kept-alive connection that breaks between two requests.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

#: Seconds the proxy waits for its threads when it stops.
STOP_TIMEOUT = 5.0
#: Seconds a ``cut`` connection is forwarded before it is closed.
CUT_AFTER = 1.0


class FaultProxy:
    """Use as a context manager; ``url`` is where clients connect, ``accepted`` how many did."""

    def __init__(self, upstream_port: int | None, plan: Sequence[str] = ()):
        self.upstream_port = upstream_port
        self.plan = list(plan)
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            step = self.plan[self.accepted] if self.accepted < len(self.plan) else "forward"
            self.accepted += 1
            self._track(client)
            if step == "drop":
                _close(client)
                continue
            self._spawn(self._relay, client, step)

    def _relay(self, client: socket.socket, step: str) -> None:
        upstream = None
        if self.upstream_port is not None:
            upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port)))
            answers_to = client if step in ("forward", "cut") else None
            self._spawn(_pump, upstream, answers_to)
            if step == "cut":
                timer = threading.Timer(CUT_AFTER, _cut, (client, upstream))
                timer.daemon = True
                timer.start()
        _pump(client, upstream)
        # The client is done; an upstream whose answer is still coming ends on its own.


def _pump(source: socket.socket, target: socket.socket | None) -> None:
    """Copy ``source`` to ``target`` (None: throw it away) until ``source`` ends."""
    try:
        while data := source.recv(65536):
            if target is not None:
                target.sendall(data)
    except OSError:
        pass  # either side went away: so does this direction
    finally:
        if target is not None:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def _cut(*sockets: socket.socket) -> None:
    """End both directions at once: the blocked reads return, the peers see the close."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
