"""Test helpers: bounded polls instead of sleeps, free ports, live gunicorn servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import requests

from stq.api.launch import WORKER_CLASS, WORKER_OPTIONS

T = TypeVar("T")
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def healthy(url: str) -> bool:
    """Whether the STQ server at ``url`` answers its health check."""
    try:
        return requests.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def http_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """A standard-library HTTP server on a free loopback port, in a thread; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without any STQ_* a developer's shell may carry, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STQ_")}
    env.update(extra or {})
    return env


@dataclass
class LiveServer:
    """A real ``gunicorn stq.api:app`` on a free loopback port."""

    db: Path
    workers: int = 4
    #: A store URL (postgresql://...) used instead of ``db``; ``db`` then only names the log.
    db_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: More gunicorn options (e.g. an access log for benchmarks).
    extra_args: list[str] = field(default_factory=list)
    #: gunicorn's ``--worker-class``: what ``stq server`` uses (with its options),
    #: ``gthread`` (8 threads), or another of gunicorn's own (``sync``).
    worker_class: str = WORKER_CLASS
    port: int = 0
    #: Restart on this port (fault tests restart a killed server where runners expect it).
    fixed_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start gunicorn and poll health; retry once on a port clash."""
        for _ in range(3):
            self.port = self.fixed_port or free_port()
            self.log = self.db.with_suffix(f".{self.port}.log")
            env = scrubbed_env({"STQ_DB": self.db_url or str(self.db), **self.env})
            cmd = [
                str(BIN / "gunicorn"),
                "stq.api:app",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                *self._worker_options(),
                "--graceful-timeout",
                "2",
                "--no-control-socket",  # nothing of a test's server lands in $HOME
                *self.extra_args,
            ]
            with open(self.log, "wb") as log:
                self.process = subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            if self._wait_healthy():
                return self
            self.stop()
        raise AssertionError(f"gunicorn did not start: {self.log_text()}")

    def _worker_options(self) -> list[str]:
        if self.worker_class == WORKER_CLASS:
            return list(WORKER_OPTIONS)
        if self.worker_class == "gthread":
            return ["--worker-class", "gthread", "--threads", "8"]
        return ["--worker-class", self.worker_class]

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            if healthy(self.url):
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL the whole gunicorn process group (master and workers)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(SHUTDOWN_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL: never leave a server behind."""
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


def start_worker(server: LiveServer, name: str, workdir: Path) -> subprocess.Popen[bytes]:
    """A real ``stq worker`` named ``name`` on ``server``, run in ``workdir`` (its log
    there too); the caller stops it."""
    with open(workdir / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [str(BIN / "stq"), "worker", server.url, "--name", name],
            env=scrubbed_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
