"""``stq.gunicorn_worker.ConnectionThreadWorker`` under a real gunicorn: balance, limits, cleanup.

What the worker promises beyond serving the API (which every live-server test
checks): keep-alive connections spread over the workers, long polls are not
capped by a thread pool, an idle connection's thread and store connection go
away, pipelined requests are answered in order, and a stop does not wait for
idle keep-alive connections.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from stq.gunicorn_worker import REQUESTS_PER_CONNECTION
from stq.server import WORKER_CLASS
from tests.helpers import BIN, LiveServer, free_port, healthy, scrubbed_env, wait_until

pytestmark = pytest.mark.slow

GET_HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"
GET_LIST = b"GET /api/v1/workflows HTTP/1.1\r\nHost: t\r\n\r\n"


def serving(*args: object) -> pytest.MarkDecorator:
    """The ``server`` fixture with ``args``: the number of workers, then gunicorn options."""
    return pytest.mark.parametrize("server", [args], indirect=True, ids=["-".join(map(str, args))])


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server with the worker count and gunicorn options ``serving`` names."""
    workers, *extra = request.param
    live = LiveServer(db=tmp_path / "stq.db", workers=workers, extra_args=list(extra)).start()
    try:
        yield live
    finally:
        live.stop()


def worker_pids(server: LiveServer) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def accepting(pid: int) -> bool:
    """Whether a worker has booted: its main thread waits for connections."""
    return Path(f"/proc/{pid}/wchan").read_text() == "do_epoll_wait"


def tcp_connections(pid: int) -> int:
    """Open TCP sockets of a process, the listening one included."""
    return sum(
        1 for fd in Path(f"/proc/{pid}/fd").iterdir() if _readlink(fd).startswith("socket:")
    )


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:"))
    )


def open_files(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


def ask(sock: socket.socket, request: bytes, answers: int = 1) -> bytes:
    """Send ``request`` and read until ``answers`` complete responses have arrived."""
    sock.sendall(request)
    data = b""
    while data.count(b"HTTP/1.1 ") < answers or not _complete(data, answers):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; got {data!r}"
        data += chunk
    return data


def _complete(data: bytes, answers: int) -> bool:
    """Whether the last of ``answers`` responses has its whole Content-Length body."""
    head, sep, body = data.rpartition(b"\r\n\r\n")
    if not sep:
        return False
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")[::-1]
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return len(body) >= length


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


@serving(2)
def test_keep_alive_connections_spread_over_the_workers(server: LiveServer) -> None:
    wait_until(lambda: len(worker_pids(server)) == 2, what="both workers to start")
    pids = worker_pids(server)
    wait_until(lambda: all(accepting(pid) for pid in pids), what="both workers to boot")
    # The fixture's health probes closed their connections; the worker that served
    # them may not have noticed yet. Idle, both hold the same sockets.
    wait_until(lambda: len({tcp_connections(pid) for pid in pids}) == 1, what="idle workers")
    before = {pid: tcp_connections(pid) for pid in pids}
    sockets = []
    try:
        for _ in range(8):  # one at a time, each answered, like runners starting up
            sock = connect(server)
            assert b"200 OK" in ask(sock, GET_HEALTH)
            sockets.append(sock)
        held = {pid: tcp_connections(pid) - before[pid] for pid in pids}
    finally:
        for sock in sockets:
            sock.close()
    assert sum(held.values()) == 8
    assert min(held.values()) >= 3, held  # all 8 on one worker would leave a core idle


@serving(1)
def test_long_polls_are_not_capped_by_a_thread_pool(server: LiveServer) -> None:
    """60 claims wait 3 s each on one worker at once (gthread would serve 8 or 32 at a time)."""

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


@serving(1, "--keep-alive", "1")
def test_idle_connections_close_and_leave_no_thread_or_open_file(server: LiveServer) -> None:
    (pid,) = worker_pids(server)

    def twenty_connections() -> None:
        sockets = [connect(server) for _ in range(20)]
        for sock in sockets:
            assert b"200 OK" in ask(sock, GET_LIST)  # each thread uses its own store connection
        assert threads(pid) >= 21
        for sock in sockets:  # idle: the server closes each after --keep-alive 1
            sock.settimeout(10)
            assert sock.recv(1) == b""
            sock.close()
        wait_until(lambda: threads(pid) == 1, timeout=10, what="the connections' threads to end")

    twenty_connections()
    files = open_files(pid)  # spare store connections are kept for later threads...
    twenty_connections()
    assert open_files(pid) == files  # ...and reused: a second round opens nothing more


@serving(1)
def test_pipelined_requests_are_answered_in_order(server: LiveServer) -> None:
    with connect(server) as sock:
        answers = ask(sock, GET_HEALTH + GET_LIST + GET_HEALTH, answers=3)
    first, second, third = answers.split(b"HTTP/1.1 ")[1:]
    assert b'"ok": true' in first.replace(b'"ok":true', b'"ok": true')
    assert b"workflows" in second
    assert b"ok" in third


@serving(1)
def test_a_request_that_is_not_plain_hands_the_connection_to_gunicorns_parser(
    server: LiveServer,
) -> None:
    """Plain, then forwarded (gunicorn's), then plain again, pipelined in one send."""
    forwarded = b"GET /api/v1/workflows HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n"
    with connect(server) as sock:
        answers = ask(sock, GET_HEALTH + forwarded + GET_HEALTH, answers=3)
        first, second, third = answers.split(b"HTTP/1.1 ")[1:]
        assert first.startswith(b"200") and b"ok" in first
        assert second.startswith(b"200") and b"workflows" in second
        assert third.startswith(b"200") and b"ok" in third
        assert b"200 OK" in ask(sock, GET_HEALTH)  # and the connection goes on


@serving(1)
def test_gunicorns_answers_to_what_is_not_plain_are_kept(server: LiveServer) -> None:
    with connect(server) as sock:  # a second Host: gunicorn refuses it
        twice = b"GET /api/v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
        answer = ask(sock, twice)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in answer and b'"code": "bad_request"' in answer
    with connect(server) as sock:  # a URI past gunicorn's limit: its 414, in SPEC's body
        answer = ask(sock, b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414")
    assert b'"code": "uri_too_long"' in answer
    with connect(server) as sock:  # Expect: 100-continue is answered before the body is sent
        sock.sendall(
            b"POST /api/v1/attempts/claim HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/json\r\nContent-Length: 26\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        assert b"204 No Content" in ask(sock, b'{"runner": "r", "wait": 0}')


@serving(1)
def test_a_body_gunicorn_cannot_frame_is_a_400_error_body(server: LiveServer) -> None:
    """A bad chunk size is raised from the body's read: the client's 400, not a 500."""
    with connect(server) as sock:
        answer = ask(
            sock,
            b"POST /api/v1/attempts/claim HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"code": "bad_request"' in answer and b"could not be read" in answer


@serving(1, "--graceful-timeout", "20")
def test_a_stop_does_not_wait_for_idle_keep_alive_connections(server: LiveServer) -> None:
    sockets = [connect(server) for _ in range(3)]
    for sock in sockets:
        assert b"200 OK" in ask(sock, GET_HEALTH)
    assert server.process is not None
    started = time.monotonic()
    server.process.terminate()  # the arbiter stops its workers gracefully
    server.process.wait(20)
    took = time.monotonic() - started
    for sock in sockets:
        sock.close()
    assert took < 8, took  # well inside --graceful-timeout 20: idle connections were shut


@serving(1)
def test_a_connection_closes_after_its_quota_of_requests(server: LiveServer) -> None:
    """So runners that all reached one worker spread out again when they reconnect."""
    with connect(server) as sock:
        for _ in range(REQUESTS_PER_CONNECTION - 1):
            assert b"Connection: keep-alive" in ask(sock, GET_HEALTH)
        assert b"Connection: close" in ask(sock, GET_HEALTH)
        assert sock.recv(1) == b""


def test_stq_server_runs_this_worker_and_leaves_no_control_socket(tmp_path: Path) -> None:
    """gunicorn 27 would put an admin socket at ~/.gunicorn/gunicorn.ctl, one path for
    every server of the user; ``stq server`` turns it off."""
    port = free_port()
    log = tmp_path / "server.log"
    env = scrubbed_env({"HOME": str(tmp_path)})
    argv = [
        str(BIN / "stq"),
        "server",
        "--bind",
        f"127.0.0.1:{port}",
        "--db",
        str(tmp_path / "s.db"),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=20, what="stq server")
        assert "Using worker: stq.gunicorn_worker.ConnectionThreadWorker" in log.read_text()
        assert not (tmp_path / ".gunicorn").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_a_worker_out_of_descriptors_pauses_instead_of_dying(tmp_path: Path) -> None:
    """More connections than the process may open: the worker must live on (a crash would
    drop every runner it serves) and answer again once some connections close."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    argv = [str(BIN / "gunicorn"), "stq.api:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    argv += ["--worker-class", WORKER_CLASS, "--no-control-socket"]
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
