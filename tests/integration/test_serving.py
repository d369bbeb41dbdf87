"""``stq.api.serving.StqWorker`` under a real gunicorn: what it adds to gunicorn's gthread.

Serving the API itself is every live-server test's business; here: long polls
are not capped by a small pool, a kept-alive runner is answered by the thread
that lingers for it (pipelined requests in order), a trickled head is cut at
its deadline, idle connections make room for new ones at capacity, a stop
does not wait for idle keep-alives, and running out of descriptors pauses the
worker instead of killing it.
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

from stq.api.launch import WORKER_CLASS
from stq.api.serving import HEAD_TIMEOUT
from tests.helpers import BIN, LiveServer, free_port, healthy, scrubbed_env, wait_until

pytestmark = pytest.mark.slow

GET_HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
GET_LIST = b"GET /api/v1/workflows HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def serving(*args: object) -> pytest.MarkDecorator:
    """The ``server`` fixture with ``args``: the number of workers, then gunicorn options."""
    return pytest.mark.parametrize("server", [args], indirect=True, ids=["-".join(map(str, args))])


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    workers, *extra = request.param
    live = LiveServer(db=tmp_path / "stq.db", workers=workers, extra_args=list(extra)).start()
    try:
        yield live
    finally:
        live.stop()


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


class Answer(NamedTuple):
    status: int
    body: bytes


class _SharedReader:
    """One buffered reader of a socket that several ``HTTPResponse``s read in turn.

    ``HTTPResponse`` takes ``sock.makefile()`` and closes it after the body;
    pipelined answers arrive in one buffer, so each must find the next one
    where the previous left off.
    """

    def __init__(self, sock: socket.socket):
        self.file = sock.makefile("rb")

    def makefile(self, mode: str) -> _SharedReader:
        return self

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self.file, name)


def ask(sock: socket.socket, request: bytes, answers: int = 1) -> list[Answer]:
    """Send ``request``; read ``answers`` answers with the standard library's parser."""
    sock.sendall(request)
    reader = _SharedReader(sock)
    read = []
    for _ in range(answers):
        resp = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
        resp.begin()
        read.append(Answer(resp.status, resp.read()))
    return read


def tcp_sockets(pid: int) -> int:
    """Open TCP sockets of a process, the listening one included."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += str(fd.readlink()).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def _both_accept(server: LiveServer, pids: list[int], before: dict[int, int]) -> bool:
    """Whether two connections held at once land on both workers (each one is up: a
    worker still starting would leave every connection to the other)."""
    pair = [connect(server), connect(server)]
    try:
        for sock in pair:
            (answer,) = ask(sock, GET_HEALTH)
            assert answer.status == 200
        return all(tcp_sockets(p) > before[p] for p in pids)
    finally:
        for sock in pair:
            sock.close()


@serving(2)
def test_kept_alive_runners_spread_over_the_workers(server: LiveServer) -> None:
    """Each runner's requests all go to the worker that accepted it: all on one would
    leave a core idle."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    wait_until(lambda: len(children.read_text().split()) == 2, what="both workers")
    pids = [int(child) for child in children.read_text().split()]
    wait_until(lambda: len({tcp_sockets(p) for p in pids}) == 1, what="idle workers")
    before = {p: tcp_sockets(p) for p in pids}
    wait_until(lambda: _both_accept(server, pids, before), what="both workers accepting")
    wait_until(lambda: {p: tcp_sockets(p) for p in pids} == before, what="idle workers again")
    sockets = []
    try:
        for _ in range(8):  # one at a time, each answered, like runners starting up
            sock = connect(server)
            (answer,) = ask(sock, GET_HEALTH)
            assert answer.status == 200
            sockets.append(sock)
        held = {p: tcp_sockets(p) - before[p] for p in pids}
    finally:
        for sock in sockets:
            sock.close()
    assert sum(held.values()) == 8
    assert min(held.values()) >= 3, held


@serving(1)
def test_long_polls_are_not_capped_by_a_small_thread_pool(server: LiveServer) -> None:
    """60 claims wait 3 s each on one worker at once."""

    def claim(i: int) -> tuple[int, float]:
        started = time.monotonic()
        answer = requests.post(
            f"{server.url}/api/v1/attempts/claim", json={"runner": f"r{i}", "wait": 3}, timeout=30
        )
        return answer.status_code, time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(claim, range(60)))
    elapsed = time.monotonic() - started
    assert {status for status, _ in answers} == {204}
    assert min(took for _, took in answers) >= 2.9  # each one really waited
    assert elapsed < 5.5  # ...and side by side: two rounds of 3 s would take 6


@serving(1)
def test_pipelined_requests_are_answered_in_order_on_one_connection(server: LiveServer) -> None:
    with connect(server) as sock:
        first, second, third = ask(sock, GET_HEALTH + GET_LIST + GET_HEALTH, answers=3)
        assert (first.status, second.status, third.status) == (200, 200, 200)
        assert b"ok" in first.body and b"workflows" in second.body and b"ok" in third.body
        (again,) = ask(sock, GET_HEALTH)  # the connection goes on
        assert again.status == 200


@serving(1)
def test_a_kept_alive_connection_serves_many_requests(server: LiveServer) -> None:
    with connect(server) as sock:
        for pause in (0, 0.01, 0.3, 0):  # inside the linger, and after it (back via the poller)
            time.sleep(pause)
            (answer,) = ask(sock, GET_HEALTH)
            assert answer.status == 200


@serving(1)
def test_gunicorn_answers_what_it_cannot_parse(server: LiveServer) -> None:
    with connect(server) as sock:  # a second Host header: refused by gunicorn's parser
        (answer,) = ask(sock, b"GET /api/v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert answer.status == 400
    with connect(server) as sock:  # a URI past gunicorn's limit
        (answer,) = ask(sock, b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert answer.status == 414
    with connect(server) as sock:  # bare LF line endings: refused at once, not waited on
        sock.sendall(b"GET /api/v1/health HTTP/1.1\nHost: 127.0.0.1\n\n")
        sock.settimeout(3)
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


@serving(1)
def test_expect_100_continue_is_answered_before_the_body(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/attempts/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Expect: 100-continue\r\nContent-Type: application/json\r\n"
            b"Content-Length: 26\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        (answer,) = ask(sock, b'{"runner": "r", "wait": 0}')
        assert answer.status == 204


@serving(1)
def test_a_head_trickled_past_its_deadline_is_cut(server: LiveServer) -> None:
    """One byte a second: the connection is closed soon after the head deadline."""
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    with connect(server) as sock:
        sock.settimeout(0.5)
        started = time.monotonic()
        closed_after = None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > HEAD_TIMEOUT + 10:
                break
    assert closed_after is not None, "the trickled head was never cut"
    assert HEAD_TIMEOUT - 1 <= closed_after <= HEAD_TIMEOUT + 3
    assert healthy(server.url)


@serving(1, "--worker-connections", "20", "--threads", "10")
def test_idle_connections_make_room_at_capacity(server: LiveServer) -> None:
    """20 idle connections fill the worker; a 21st runner is still answered."""
    idle = [connect(server) for _ in range(10)]  # opened, never a byte sent
    kept = [connect(server) for _ in range(10)]
    try:
        for sock in kept:  # answered, then kept alive
            (answer,) = ask(sock, GET_HEALTH)
            assert answer.status == 200
        started = time.monotonic()
        answer = requests.get(f"{server.url}/api/v1/health", timeout=10)
        assert answer.status_code == 200
        assert time.monotonic() - started < 2
        closed = 0
        for sock in idle + kept:
            sock.settimeout(0.01)
            try:
                closed += sock.recv(1) == b""
            except (TimeoutError, OSError):
                pass
        assert closed >= 1  # someone idle made room
    finally:
        for sock in idle + kept:
            sock.close()


@serving(1, "--graceful-timeout", "20")
def test_a_stop_does_not_wait_for_idle_keep_alive_connections(server: LiveServer) -> None:
    sockets = [connect(server) for _ in range(3)]
    for sock in sockets:
        (answer,) = ask(sock, GET_HEALTH)
        assert answer.status == 200
    assert server.process is not None
    started = time.monotonic()
    server.process.terminate()
    server.process.wait(20)
    took = time.monotonic() - started
    for sock in sockets:
        sock.close()
    assert took < 8, took  # well inside --graceful-timeout 20


def test_stq_server_says_where_it_serves_and_leaves_no_control_socket(tmp_path: Path) -> None:
    """It names the dashboard URL and the store; gunicorn 27's admin socket (one path per
    user, ~/.gunicorn/gunicorn.ctl) is turned off so that servers do not share it."""
    port = free_port()
    log = tmp_path / "server.log"
    env = scrubbed_env({"HOME": str(tmp_path)})
    db = tmp_path / "s.db"
    argv = [str(BIN / "stq"), "server", "--bind", f"127.0.0.1:{port}", "--db", str(db)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=20, what="stq server")
        text = log.read_text()
        assert f"dashboard at http://127.0.0.1:{port}/" in text
        assert f"SQLite {db}" in text
        assert f"Using worker: {WORKER_CLASS}" in text
        assert not (tmp_path / ".gunicorn").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_a_worker_out_of_descriptors_pauses_instead_of_dying(tmp_path: Path) -> None:
    """More connections than the process may open: the worker lives on (a crash would
    drop every runner it serves) and answers again once some connections close."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    argv = [str(BIN / "gunicorn"), "stq.api:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    argv += ["--worker-class", WORKER_CLASS, "--threads", "8", "--no-control-socket"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            env=scrubbed_env({"STQ_DB": str(tmp_path / "s.db")}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
        )
    sockets: list[socket.socket] = []
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=20, what="gunicorn")
        (worker,) = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for _ in range(100):  # past the limit of 64: later ones wait in the listen backlog
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: "Cannot accept a connection now" in log.read_text(), what="the pause")
        for sock in sockets:
            sock.close()
        sockets.clear()
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=20, what="answers again")
        assert Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split() == [worker]
    finally:
        for sock in sockets:
            sock.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
