"""A gunicorn worker class with one thread per connection, and the idlest worker accepting.

STQ's traffic is a few long-lived keep-alive connections (one per runner)
each sending one short request per task, plus long polls that sit in the
application for up to 30 s. gunicorn's ``gthread`` worker hands every request
from its poller thread to a pool thread and back: two thread switches, a pipe
write, two epoll registrations and a future per request, and a pool of fixed
size that long polls can exhaust. Here each connection owns a thread for its
whole life, reading its next request itself, so a request costs only its own
parsing and handling. Idle keep-alive connections still close after gunicorn's
``--keep-alive`` seconds, and a worker holds at most ``--worker-connections``.

Balance: a runner keeps its connection, so whichever worker accepts it serves
its tasks, and a worker's Python runs under its own GIL. All workers wake
when a connection arrives; a worker already holding connections waits a
moment before accepting, so the one with the fewest usually takes it. A
connection is closed after ``REQUESTS_PER_CONNECTION`` answers, so runners
that connected while a worker was still booting spread out soon after.

Parsing: plain requests, which is what runners send, are read by
``stq.lean_http``; anything else goes to gunicorn's HTTP/1 parser (see that
module for the rule and why). Of gunicorn, only its worker interface, parser
and WSGI layer are used: ``base.Worker``, ``http.RequestParser``,
``wsgi.create``, ``wsgi.base_environ`` and ``wsgi.Response``.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import threading
import time
from datetime import datetime
from typing import Any

from gunicorn import http, util
from gunicorn import sock as gunicorn_sock
from gunicorn.http import wsgi
from gunicorn.workers import base

from stq.lean_http import (
    CachedDateResponse,
    NoRequest,
    PlainReader,
    PlainRequest,
    plain_environ,
    plain_possible,
)

#: Seconds a worker waits per connection it already holds before accepting another.
ACCEPT_DELAY_PER_CONNECTION = 0.0005
#: Cap on that wait.
MAX_ACCEPT_DELAY = 0.01
#: Seconds accepting pauses when the process is out of descriptors or threads.
RESOURCE_PAUSE = 0.1
#: accept() errors that mean "out of resources for now", not "broken".
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: Seconds a new connection may take to send its first request (gthread waits as long).
FIRST_REQUEST_WAIT = 5.0
#: Requests answered on one connection before it is closed, so busy runners connect
#: again now and then and even out over the workers (nginx's ``keepalive_requests``).
REQUESTS_PER_CONNECTION = 100


class _Connection:
    """One client socket and whether a request is being handled on it."""

    __slots__ = ("busy", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.busy = False


class _SettledConfig:
    """A read-only view of gunicorn's settings that looks each one up once.

    gunicorn's parser and WSGI layer read about twenty settings per request,
    each through ``Config.__getattr__`` and ``Setting.get``: a third of what
    parsing a runner's request costs. A worker's settings never change while
    it runs (a reload starts new workers), so the first answer stays right.
    """

    def __init__(self, cfg: Any):
        self._cfg = cfg

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._cfg, name)
        setattr(self, name, value)
        return value


class ConnectionThreadWorker(base.Worker):
    """A gunicorn worker: an accepting main thread plus one thread per connection."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.settled = _SettledConfig(self.cfg)  # what the request path reads
        self.base_environ = wsgi.base_environ(self.cfg)  # a plain request's environ's start
        self.connections: set[_Connection] = set()
        self.lock = threading.Lock()

    # --- the main thread: accept, stay alive, stop -----------------------------

    def run(self) -> None:
        util.write_error = write_json_error  # this worker process's answers to unparsable requests
        for listener in self.sockets:
            listener.setblocking(False)
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            selector.register(listener, selectors.EVENT_READ)
        try:
            while self.alive:
                self.notify()
                if len(self.connections) < self.cfg.worker_connections:
                    for key, _ in selector.select(1.0):
                        self.accept(key.fileobj)  # type: ignore[arg-type]
                else:
                    time.sleep(0.05)
                if not self.is_parent_alive():
                    break
        finally:
            selector.close()
        self.stop_serving()

    def is_parent_alive(self) -> bool:
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            return False
        return True

    def accept(self, listener: socket.socket) -> None:
        held = len(self.connections)
        if held:
            time.sleep(min(MAX_ACCEPT_DELAY, held * ACCEPT_DELAY_PER_CONNECTION))
        try:
            sock, addr = listener.accept()
        except OSError as ex:
            if ex.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return  # an idler worker took it
            if ex.errno in _OUT_OF_RESOURCES:
                self._starved(ex)  # the connection waits in the backlog meanwhile
                return
            raise
        sock.setblocking(True)
        conn = _Connection(sock)
        with self.lock:
            self.connections.add(conn)
        server = listener.getsockname()
        try:
            threading.Thread(target=self.serve, args=(conn, addr, server), daemon=True).start()
        except RuntimeError as ex:  # "can't start new thread": the system's thread limit
            with self.lock:
                self.connections.discard(conn)
            sock.close()
            self._starved(ex)

    def _starved(self, ex: BaseException) -> None:
        """Out of descriptors or threads: say so, and pause accepting rather than crash.

        A crashed worker would drop every connection it holds; the ones that
        finish free what the next accept needs.
        """
        self.log.error("Cannot accept a connection now (%s); retrying shortly", ex)
        time.sleep(RESOURCE_PAUSE)

    def stop_serving(self) -> None:
        """Close idle connections now; give busy ones ``--graceful-timeout`` to finish."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.connections and time.monotonic() < deadline:
            with self.lock:
                idle = [c for c in self.connections if not c.busy]
            for conn in idle:
                _shut(conn.sock)
            self.notify()
            time.sleep(0.05)

    # --- a connection's thread ---------------------------------------------------

    def serve(self, conn: _Connection, addr: Any, server: Any) -> None:
        """Answer requests on one connection until it closes, idles out, or we stop.

        Plain requests (a runner's) are read by ``lean_http.PlainReader``; the
        first one that is not plain hands the connection, and the bytes read
        so far, to gunicorn's parser for good.
        """
        sock = conn.sock
        req = None
        try:
            if self.settled.is_ssl:
                sock = conn.sock = gunicorn_sock.ssl_wrap_socket(sock, self.cfg)
            plain = PlainReader(sock) if plain_possible(self.settled, addr, server) else None
            parser = None
            wait, answered, keepalive = FIRST_REQUEST_WAIT, 0, True
            while keepalive and self.alive and answered < REQUESTS_PER_CONNECTION:
                req = None if plain is None else plain.read(wait)
                if req is None:
                    if parser is None:
                        parser = http.RequestParser(self.settled, sock, addr)
                        if plain is not None:
                            parser.unreader.unread(plain.unread())
                            plain = None
                    sock.settimeout(wait)  # only while no request has begun: then blocking
                    req = next(parser)
                    sock.settimeout(None)
                conn.busy = True
                answered += 1
                last = answered == REQUESTS_PER_CONNECTION
                keepalive = self.handle_request(req, sock, addr, server, last)
                conn.busy = False
                wait = self.settled.keepalive
        except (StopIteration, http.errors.NoMoreData, NoRequest, TimeoutError):
            pass
        except OSError as ex:
            if ex.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF):
                self.log.exception("Socket error processing request.")
        except BaseException as ex:  # answered the way gunicorn's own workers answer it
            self.handle_error(req, sock, addr, ex)
        finally:
            with self.lock:
                self.connections.discard(conn)
            util.close_graceful(sock)

    def handle_request(
        self, req: Any, sock: socket.socket, addr: Any, server: Any, last: bool
    ) -> bool:
        """Run the app for one request; True when the connection stays open."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.settled.pre_request(self, req)
            started = datetime.now()
            if isinstance(req, PlainRequest):
                resp = CachedDateResponse(req, sock, self.settled)
                environ = plain_environ(req, sock, addr, server, self.base_environ)
            else:
                resp, environ = wsgi.create(
                    req, sock, addr, server, self.settled, response_class=CachedDateResponse
                )
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
            if last or not self.alive or not self.settled.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp is not None and resp.headers_sent:
                # Half a response is on the wire: another would corrupt it, so just close.
                self.log.exception("Error handling request")
                raise StopIteration() from None
            raise
        finally:
            try:
                self.settled.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")


def _shut(sock: socket.socket) -> None:
    """Wake a thread blocked reading ``sock``: its ``recv`` returns end-of-stream."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def write_json_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's answer to a request it could not parse, as SPEC's JSON error body.

    gunicorn's ``Worker.handle_error`` chooses the status and message (a bad
    request line, header or chunk framing, a URI or headers over the limits)
    and hands them to ``gunicorn.util.write_error``, which writes an HTML page;
    ``run`` puts this function in its place in the worker process, so the
    mapping stays gunicorn's and only the body changes.
    """
    from stq.api.errors import code_for, error_body  # not at import: the arbiter loads us

    body = json.dumps(error_body(code_for(status, reason), message or reason)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
