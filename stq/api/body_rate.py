"""The body-rate rule: a request body keeps arriving, whatever gunicorn worker serves it.

A client that announces a body and then sends it a byte at a time holds a
server thread (a sync worker's only one) for as long as it likes. Socket
timeouts do not stop it: they bound each ``recv``, and gunicorn's body reader
may ``recv`` many times inside one ``read(n)``, each time getting a byte in
time. So the rule is the one Apache's ``mod_reqtimeout`` spells
``body=10,MinRate=1000``: a body has ``grace`` seconds, plus one second more
for every ``min_rate`` bytes received. Past that deadline a watchdog thread
shuts the reading side of the client's socket (gunicorn hands it over as
``environ["gunicorn.socket"]``), which ends the blocked read at once; the
request is answered 408 and the connection closed.

The deadline only moves when a read returns, so reads are cut into pieces no
larger than what the client owes before its deadline anyway (half of it, for
a margin): a client keeping to the rate always finishes a piece in time, and
a fast client soon earns pieces of any size. A runner's 200-byte body is one
read, watched for the time it takes.

The watchdog is one daemon thread per process, started by the first body
read; it ends once nothing has been watched for a while, so with no body
being read there is no thread at all.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stq.errors import RequestTimeout
from stq.settings import BODY_GRACE, BODY_MIN_RATE


@dataclass(frozen=True)
class BodyRate:
    """The rule's two numbers: ``grace`` seconds, then ``min_rate`` bytes per second."""

    grace: float = BODY_GRACE
    min_rate: float = BODY_MIN_RATE


class Watchdog:
    """The thread that cuts the bodies that fell behind; it runs only while one is read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._watched: set[PacedInput] = set()
        self._thread: threading.Thread | None = None
        #: The longest the thread sleeps: a body watched meanwhile is due no sooner.
        self._nap = float("inf")
        # A process forked from this one (a gunicorn worker) has no thread yet.
        os.register_at_fork(after_in_child=functools.partial(_forget_thread, weakref.ref(self)))

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._watched = set()
        self._thread = None

    def watch(self, body: PacedInput, grace: float) -> None:
        body.deadline = self.clock() + grace
        with self._lock:
            self._watched.add(body)
            if grace < self._nap:
                self._nap = grace
            if self._thread is None:
                self._start()

    def release(self, body: PacedInput) -> None:
        with self._lock:
            self._watched.discard(body)

    @property
    def watched(self) -> int:
        """How many bodies are being read right now."""
        return len(self._watched)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="stq-body-rate", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread": the next body read tries again
            return
        self._thread = thread

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._watched:
                    self._thread = None
                    return
                now = self.clock()
                for body in [b for b in self._watched if b.deadline <= now]:
                    body.cut()  # under the lock: a released body's socket is never touched
                    self._watched.discard(body)
                due = min((b.deadline for b in self._watched), default=now)
                nap = min(due - now, self._nap)
            time.sleep(max(nap, 0.001))


def _forget_thread(watchdog: weakref.ref[Watchdog]) -> None:
    found = watchdog()
    if found is not None:
        found._after_fork()


class PacedInput:
    """``wsgi.input`` for a body read off the client's socket, cut if it falls behind.

    ``length`` is the declared ``Content-Length`` (None when chunked); reads
    never go past it. Reads block until they have what they asked for, as
    gunicorn's own do (falcon's ``bounded_stream.read()`` relies on it). The
    watch begins with the first read, so a body never read never starts the
    watchdog, and ends when the body is complete, so a long poll after a small
    body is not cut.
    """

    __slots__ = (
        "_done",
        "_left",
        "_rule",
        "_stream",
        "_watchdog",
        "complete",
        "deadline",
        "sock",
        "was_cut",
    )

    def __init__(
        self, stream: Any, sock: Any, length: int | None, rule: BodyRate, watchdog: Watchdog
    ):
        self._stream = stream
        self.sock = sock
        self._left = -1 if length is None else length  # -1: until the end of the stream
        self._rule = rule
        self._watchdog = watchdog
        self.deadline = 0.0  # set when the watch begins
        self.was_cut = False
        self._done = False
        #: The whole body was read: its declared length, or to its end.
        self.complete = False

    def read(self, size: int | None = -1) -> bytes:
        return self._paced(self._stream.read, size, lines=False)

    def readline(self, size: int | None = -1) -> bytes:
        return self._paced(self._stream.readline, size, lines=True)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> PacedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def _paced(self, read: Callable[[int], bytes], size: int | None, lines: bool) -> bytes:
        left = self._left
        want = left if size is None or size < 0 or (0 <= left < size) else size
        if want == 0 or self._done:
            return read(want) if want else b""  # past the body: never blocks
        if not self.deadline:
            self._watchdog.watch(self, self._rule.grace)
        parts: list[bytes] = []
        while True:
            piece = self._piece_size(want)
            data = self._read(read, piece)
            parts.append(data)
            self.deadline += len(data) / self._rule.min_rate  # each byte buys time
            if self._left > 0:
                self._left -= len(data)
            line_ended = lines and data.endswith(b"\n")
            if self._left == 0 or (len(data) < piece and not line_ended):
                self.complete = True  # the whole declared body, or an end of file
                self.release()
                break
            want -= len(data)
            if line_ended or want == 0:
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _piece_size(self, want: int) -> int:
        """Half of what the client owes before its deadline (at least 1); ``want`` if less.

        A ``want`` below 0 means "to the end": a chunked body's length is unknown.
        """
        owed = max(1, int((self.deadline - self._watchdog.clock()) * self._rule.min_rate / 2))
        return owed if want < 0 else min(want, owed)

    def _read(self, read: Callable[[int], bytes], size: int) -> bytes:
        """One read; a read the watchdog ended is the client's 408, whatever it returned."""
        try:
            data = read(size)
        except Exception:
            if not self.was_cut:
                raise
            data = b""
        if self.was_cut:
            self._done = True
            raise RequestTimeout(
                f"The request body arrived slower than {self._rule.min_rate:.0f} bytes/s "
                f"after its first {self._rule.grace:g} s."
            )
        return data

    def cut(self) -> None:
        """Stop the body: the blocked read returns at once, nothing more is read.

        Only the reading side is shut, so a 408 can still be written. An
        ``ssl.SSLSocket`` would drop its TLS state in its own ``shutdown``, so
        the plain socket's is called (the TLS layer then reads an end of file).
        """
        self.was_cut = True
        try:
            if isinstance(self.sock, socket.socket):
                socket.socket.shutdown(self.sock, socket.SHUT_RD)
            else:  # a green socket (gevent, eventlet) is no socket.socket subclass
                self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # the client is gone already

    def release(self) -> None:
        """The body is complete, or the request is over: stop watching it."""
        if not self._done:
            self._done = True
            if self.deadline:
                self._watchdog.release(self)
