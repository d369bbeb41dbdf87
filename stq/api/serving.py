"""The gunicorn worker ``stq server`` runs: gunicorn's ``gthread`` with a few policies.

gunicorn's threaded worker reads every request with gunicorn's own parser
(its C parser, gunicorn-h1c, when installed) and serves it from a thread
pool, parking idle keep-alive connections in one poller. STQ's traffic adds
needs that it leaves open; each is a small override of a public worker
method, and nothing here reads or writes HTTP:

* **Linger.** A runner sends its next request a few milliseconds after its
  last answer (the command ran in between). Handing the connection back to
  the poller and then to a pool thread again costs two thread switches, a
  pipe write and two poller registrations per task; the thread that answered
  instead waits ``LINGER`` seconds for the next request on the same
  connection. On two cores (W1, alternating runs) that saved a sixth of the
  server's CPU per task (1.01 against 1.22 ms) and 8% of the wall; a chain's
  hop, one request at a time, was the same either way.
* **Head deadline.** gunicorn's parser reads a request head with a blocking
  socket, so a client trickling a head one byte at a time would hold a
  thread for ever. A head must arrive whole within ``HEAD_TIMEOUT`` seconds
  of its first byte; the main loop shuts down the socket of one that has not,
  which ends the blocked read.
* **No thread for silence.** A new connection takes a thread only once it
  has sent something; until then it waits in the poller like an idle
  keep-alive (and is closed after ``--keep-alive`` seconds of silence).
* **One segment per answer.** gunicorn writes an answer's head and body
  separately; the socket is corked while the application answers, so the
  client is woken once per answer, not twice.
* **Balance.** The worker holding the fewest connections accepts the next.
* **Closing off the main thread.** gunicorn drains a connection it closes
  with a blocking read on the worker's main thread, so a client that asks
  for ``Connection: close`` and then neither reads nor closes stalls the
  whole worker for two seconds; here the drain waits in the poller
  (``stq.api.lingering``).
* **Eviction before refusal.** At ``--worker-connections`` gunicorn stops
  accepting, so idle connections (parked keep-alives, or connections that
  never sent a byte) would lock out a runner that needs to report a result.
  Here the oldest idle connections are closed to make room instead; only when
  every connection is busy does the worker stop accepting.

The body of a request is the application's to pace (see ``stq.api.guards``):
that rule holds under any gunicorn worker, this one included.
"""

from __future__ import annotations

import errno
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from gunicorn.workers import gthread

# gunicorn's master imports this worker class before it forks the workers: loading the
# app's modules with it lets every worker share one copy of them, where each would
# otherwise import its own after the fork (~8 MB more per worker process).
import stq.api.application  # noqa: F401
from stq.api.lingering import LingeringCloses

#: Seconds a thread waits for the next request on the connection it just answered.
LINGER = 0.1
#: Seconds a request head may take to arrive whole once a thread reads it.
HEAD_TIMEOUT = 10.0
#: Seconds a pool thread waits for work before it ends (and gives its memory back).
THREAD_IDLE = 5.0
#: Seconds a worker waits per connection it holds before accepting another: every
#: worker is woken by a new connection, so the idlest takes it. Only while it holds
#: fewer than ``BALANCE_BELOW``: past that the connections have spread by themselves,
#: and a flood of them must not keep the worker from accepting for long.
ACCEPT_DELAY_PER_CONNECTION = 0.0005
BALANCE_BELOW = 16
#: Seconds accepting pauses when the process is out of descriptors or threads.
RESOURCE_PAUSE = 0.1
#: Linux's option to hold partial segments until uncorked (None elsewhere).
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)
#: accept() errors that mean "out of resources for now", not "broken".
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class StqWorker(gthread.ThreadWorker):
    """gunicorn's threaded worker with linger, a head deadline and eviction of idle clients."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cfg = SettledConfig(self.cfg)
        self._heads: dict[gthread.TConn, float] = {}  # connection -> head deadline
        self._heads_lock = threading.Lock()
        self._closing: LingeringCloses | None = None  # made with the poller, in run()

    def load_wsgi(self) -> None:
        """Load the app, then let it open its store before the first request comes."""
        super().load_wsgi()
        warm_up = getattr(self.wsgi, "warm_up", None)
        if callable(warm_up):
            warm_up()

    def get_thread_pool(self) -> ElasticPool:
        """Threads for requests in flight, started on demand and ended when idle.

        A burst (runners arriving, a slow-client attack) needs hundreds of
        threads for a few seconds; gunicorn's pool would keep them, and each
        thread's store connection, for the worker's life.
        """
        return ElasticPool(self.cfg.threads)

    # --- pool threads ------------------------------------------------------------

    def handle(self, conn: gthread.TConn) -> Any:
        """Serve requests on ``conn`` while they follow each other closely.

        A new connection with nothing to read yet goes straight back to the
        poller (gunicorn's own "deferred" path) instead of holding this thread
        for up to 5 s: connections that never send would otherwise take every
        thread and stall everyone else.
        """
        if not conn.initialized and not conn.data_ready and not _readable(conn, 0):
            return gthread._DEFER  # the sentinel gthread's finish_request parks it with
        while True:
            with self._heads_lock:
                self._heads[conn] = time.monotonic() + HEAD_TIMEOUT
            try:
                keepalive = super().handle(conn)
            finally:
                with self._heads_lock:
                    self._heads.pop(conn, None)
            if keepalive is not True or not self.alive or not _next_request_soon(conn):
                return keepalive

    def handle_request(self, req: Any, conn: gthread.TConn) -> bool:
        """The head has arrived: from here on the application paces the request.

        The answer is corked: gunicorn writes its head and its body separately,
        and two segments would wake the client twice for one answer.
        """
        with self._heads_lock:
            self._heads.pop(conn, None)
        corked = _cork(conn.sock, True)
        try:
            return super().handle_request(req, conn)
        finally:
            if corked:
                _cork(conn.sock, False)  # uncorking sends what is held at once

    # --- the main thread -----------------------------------------------------------

    def run(self) -> None:
        self._closing = LingeringCloses(self.poller, self.worker_connections)
        try:
            super().run()
        finally:
            self._closing.close_all()

    def finish_request(self, conn: gthread.TConn, fs: Future[Any]) -> None:
        """gunicorn's, except that a connection to close is drained from the poller."""
        if self._closing is not None and _closes(fs):
            self.nr_conns -= 1
            self._closing.close(conn.sock)
            return
        super().finish_request(conn, fs)

    def murder_pending(self) -> None:
        """gunicorn's clean-up of silent new connections, plus heads past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        with self._heads_lock:
            late = [conn for conn, deadline in self._heads.items() if deadline <= now]
            for conn in late:
                del self._heads[conn]
        for conn in late:
            _shut(conn.sock)  # the thread's blocked read returns end-of-stream
        if self._closing is not None:
            self._closing.expire()

    def accept(self, listener: socket.socket) -> None:
        """gunicorn's accept, left to the idlest worker, pausing when resources run out.

        A runner keeps its connection, so the worker that accepts it serves
        all its tasks under one interpreter lock: four runners on one worker
        leave the other core idle. A worker already holding connections waits
        a moment, so one holding fewer takes the connection first.

        Out of descriptors or threads, the worker pauses instead of dying: a
        crash would drop every connection it holds; the ones that finish free
        what the next accept needs, and the client waits in the backlog.
        """
        if 0 < self.nr_conns < BALANCE_BELOW:
            time.sleep(self.nr_conns * ACCEPT_DELAY_PER_CONNECTION)
        try:
            super().accept(listener)
        except (OSError, RuntimeError) as ex:  # RuntimeError: "can't start new thread"
            if isinstance(ex, OSError) and ex.errno not in _OUT_OF_RESOURCES:
                raise
            self.log.error("Cannot accept a connection now (%s); retrying shortly", ex)
            time.sleep(RESOURCE_PAUSE)

    def set_accept_enabled(self, enabled: bool) -> None:
        """At capacity, close the oldest idle connections rather than stop accepting."""
        if not enabled and self.alive and self._evict_idle():
            return
        super().set_accept_enabled(enabled)

    def _evict_idle(self) -> bool:
        """Close idle connections until one more fits; False when none is idle."""
        evicted = False
        for idle in (self.pending_conns, self.keepalived_conns):
            while idle and self.nr_conns >= self.worker_connections:
                conn = idle.popleft()  # the oldest: both queues are in arrival order
                try:
                    self.poller.unregister(conn.sock)
                except (OSError, KeyError, ValueError):
                    pass
                self.nr_conns -= 1
                conn.close()
                evicted = True
        return evicted


def _closes(fs: Future[Any]) -> bool:
    """Whether gunicorn would close the connection gracefully: the request's handling
    ended without keep-alive (an exception closes it at once, without a drain)."""
    if fs.cancelled():
        return True
    return fs.exception() is None and not fs.result()


def _next_request_soon(conn: gthread.TConn) -> bool:
    """Whether the client sends its next request within ``LINGER`` (or already has)."""
    if conn.parser is None or conn.is_http2:
        return False
    if conn.parser.unreader.buf.getvalue():
        return True  # pipelined: already read
    return _readable(conn, LINGER)


def _readable(conn: gthread.TConn, timeout: float) -> bool:
    """Whether ``conn`` has bytes to read within ``timeout`` seconds."""
    poller = select.poll()  # poll, not select: descriptors may be numbered past 1024
    try:
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    except (OSError, ValueError):
        return False


def _cork(sock: socket.socket, on: bool) -> bool:
    """Hold (or release) partial segments on ``sock``; False where it cannot be corked
    (no TCP_CORK on this system, or not a TCP socket)."""
    if _TCP_CORK is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, on)
    except OSError:
        return False
    return True


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class SettledConfig:
    """gunicorn's settings, each looked up once: a worker's never change while it runs.

    gunicorn's parser and WSGI layer read about twenty settings per request,
    each through ``Config.__getattr__`` and ``Setting.get``: ~4% of the
    server's time per task in the W1 benchmark's profile. A reload starts new
    workers, with a new configuration.
    """

    def __init__(self, cfg: Any):
        self._cfg = cfg

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cfg, name)
        setattr(self, name, value)
        return value


class ElasticPool:
    """The part of ``ThreadPoolExecutor`` gthread uses, with threads that end when idle.

    ``_idle`` counts idle threads not yet promised a job. A job takes one of
    them, or starts a thread when there is none, so a job never waits behind
    another that may be a 30 s long poll; only past ``max_threads`` does it
    wait (``_backlog``) for the first thread to finish. A thread idle
    for ``idle`` seconds ends, unless a job is still queued for someone.
    """

    def __init__(self, max_threads: int, idle: float = THREAD_IDLE):
        self.max_threads = max_threads
        self.idle = idle
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple] | None]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._backlog = 0  # jobs queued with no thread promised: every thread was busy
        self._threads = 0
        self._stopped = False

    @property
    def threads(self) -> int:
        """Threads alive in the pool, busy or idle."""
        return self._threads

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                self._idle -= 1
            elif self._threads < self.max_threads:
                thread = threading.Thread(target=self._work, name="stq-request", daemon=True)
                thread.start()  # "can't start new thread" reaches the caller (StqWorker.accept)
                self._threads += 1
            else:
                self._backlog += 1
            self._jobs.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.idle)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty() and self._idle:
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue  # a job is queued, promised to an idle thread: maybe this one
            if job is None:  # shutdown
                return
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as ex:
                    future.set_exception(ex)
            del job, future, fn, args  # nothing of a request outlives it in this frame
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # this thread takes the oldest waiting job next
                else:
                    self._idle += 1

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Take no more jobs; idle threads end at once (busy ones after their job)."""
        with self._lock:
            self._stopped = True
            for _ in range(self._threads):
                self._jobs.put(None)
