"""Attacking a live server from 127.0.0.1: the servers, a latency prober, memory readings.

Every attack here is bounded: at most 500 connections, at most 60 s, all to
the loopback address of a server the test started and stops.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import BIN, free_port, healthy, scrubbed_env, wait_until

TOKEN = "hostile-suite-token"
#: The longest a probe may take while an attack runs (asked again at once, see probe.py).
PROBE_LIMIT = 0.1
#: Single slow answers (each followed at once by a quick one) allowed per 100 probes.
BLIPS_PER_100 = 1
MAX_CONNECTIONS = 500


@dataclass
class Target:
    """A server started the way users start it: ``stq server``, or plain gunicorn."""

    kind: str  # "stq-server" or "plain-gunicorn"
    tmp: Path
    token: str | None = TOKEN
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def holds_slow_clients(self) -> bool:
        """Whether slow clients leave it free for others (one sync worker cannot be)."""
        return self.kind == "stq-server"

    def start(self) -> Target:
        self.port = free_port()
        bind = f"127.0.0.1:{self.port}"
        db = self.tmp / f"{self.kind}.db"
        if self.kind == "stq-server":
            argv = [str(BIN / "stq"), "server", "--bind", bind, "--db", str(db), "--workers", "2"]
        else:  # what a newcomer types, bound to a free port
            argv = [str(BIN / "gunicorn"), "stq.api:app", "--bind", bind]
        env = scrubbed_env({"HOME": str(self.tmp), "STQ_DB": str(db)})
        if self.token:
            env["STQ_TOKEN"] = self.token
        with open(self.tmp / f"{self.kind}.log", "wb") as log:
            self.process = subprocess.Popen(
                argv, env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(lambda: healthy(self.url), timeout=30, what=f"{self.kind} to answer")
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def rss_mib(self) -> float:
        """Resident memory of gunicorn's master and its workers together."""
        assert self.process is not None
        total = 0
        for each in [self.process.pid, *self.worker_pids()]:
            try:
                status = Path(f"/proc/{each}/status").read_text()
            except FileNotFoundError:
                continue  # a worker being replaced
            line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
            total += int(line.split()[1])
        return total / 1024

    @property
    def workers(self) -> int:
        return 2 if self.kind == "stq-server" else 1

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def warm(self) -> None:
        """Every worker booted, its store opened and every module a submit uses imported.

        What a process imports once (the loader, jsonschema) is not memory an
        attack holds: it is there before the attack is measured.
        """
        wait_until(lambda: len(self.worker_pids()) == self.workers, what="every worker")
        headers = {**self.auth(), "Content-Type": "application/json"}
        valid = b'{"name": "warm", "tasks": {"a": {"command": "true"}}}'
        invalid = b'{"name": "warm", "tasks": {"a": {"command": 5}}}'
        for _ in range(10 * self.workers):  # requests land on any worker
            assert self.request("GET", "/api/v1/workflows?limit=1", headers=self.auth())[0] == 200
            assert self.request("POST", "/api/v1/workflows", valid, headers)[0] == 201
            assert self.request("POST", "/api/v1/workflows", invalid, headers)[0] == 422
        if self.kind == "stq-server":
            self._fleet_waits(headers)

    def _fleet_waits(self, headers: dict[str, str]) -> None:
        """300 runners long-polling at once, as a fleet does: the threads a server has run
        at once leave CPython ~30 KiB each to reuse, which is no attacker's doing."""
        claim = b'{"runner": "warm", "wait": 1}'
        with ThreadPoolExecutor(300) as pool:
            answers = list(
                pool.map(
                    lambda _: self.request("POST", "/api/v1/attempts/claim", claim, headers)[0],
                    range(300),
                )
            )
        assert set(answers) <= {200, 204}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@dataclass
class Prober:
    """Health, and an authenticated API call, every 50 ms on new connections, timed.

    It runs in a process of its own (``probe.py``) for the span of a ``with``.
    A stall fails it; so do more than ``BLIPS_PER_100`` single slow answers
    per hundred probes (at least one is allowed).
    """

    target: Target
    slowest: float = 0.0
    #: Which probe was the slowest, and how long after the prober started.
    slowest_at: str = ""
    #: Single slow answers, each followed at once by a quick one.
    blips: int = 0
    failures: list[str] = field(default_factory=list)
    probes: int = 0
    _process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Prober:
        argv = [sys.executable, str(Path(__file__).with_name("probe.py"))]
        argv += [str(self.target.port), self.target.token or "", str(PROBE_LIMIT)]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        out, _ = self._process.communicate("", timeout=30)
        seen = json.loads(out)
        self.probes, self.slowest, self.slowest_at, self.blips, self.failures = (
            seen[key] for key in ("probes", "slowest", "slowest_at", "blips", "failures")
        )

    def assert_served(self) -> None:
        assert self.probes >= 4, "the prober hardly ran"
        assert not self.failures, self.failures[:5]
        assert self.slowest < PROBE_LIMIT, (
            f"slowest probe {self.slowest * 1000:.0f} ms ({self.slowest_at})"
        )
        allowed = max(1, self.probes * BLIPS_PER_100 // 100)
        assert self.blips <= allowed, f"{self.blips} slow answers in {self.probes} probes"


def connect(target: Target) -> socket.socket:
    return socket.create_connection(("127.0.0.1", target.port), timeout=10)


def closed_or_answered(sock: socket.socket, timeout: float) -> bytes | None:
    """What the server sends before closing, within ``timeout`` (None: still open)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return None
    except OSError:
        pass  # reset: closed
    return data
