"""Starting and stopping the processes a benchmark needs: server, runners, a probe of the store.

Every process is started in its own session and killed by process group, so a
failed benchmark leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
STQ = str(BIN / "stq")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any STQ_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STQ_")}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(argv: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.005) -> None:
    """Poll ``predicate`` until true; fail loudly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: timed out waiting for {what}")
        time.sleep(interval)


def healthy(url: str) -> bool:
    try:
        return requests.get(url + "/api/v1/health", timeout=1).ok
    except requests.RequestException:
        return False


#: The recommended command line with gunicorn's own worker class (docs/api.md, "Serving").
PLAIN_GUNICORN = ["-m", "gunicorn", "stq.api:app", "--workers", "4", "--worker-class", "gthread",
                  "--threads", "1000", "--worker-connections", "2000",
                  "--no-control-socket"]  # fmt: skip


@contextmanager
def server(
    db: Path,
    workers: int | None = None,
    env: dict[str, str] | None = None,
    plain: bool = False,
    stq: str = STQ,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``stq server`` (or, ``plain``, gunicorn's own gthread) on a free port, on ``db``;
    ``stq`` is the build's executable."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bind = f"127.0.0.1:{port}"
    if plain:
        argv = [sys.executable, *PLAIN_GUNICORN, "--bind", bind]
        env = {**(env or clean_env()), "STQ_DB": str(db)}
    else:
        argv = [stq, "server", "--bind", bind, "--db", str(db)]
        if workers is not None:
            argv += ["--workers", str(workers)]
    proc = spawn(argv, env or clean_env(), db.parent)
    try:
        wait_for(lambda: healthy(url), 30, "the server to start", 0.02)
        yield url, proc
    finally:
        kill(proc)


@contextmanager
def runners(url: str, count: int, cwd: Path, env: dict[str, str] | None = None, stq: str = STQ):
    """``count`` ``stq worker`` processes of the build ``stq``; yields their Popen objects."""
    procs = [spawn([stq, "worker", url, "--name", f"r{i}"], env or clean_env(), cwd)
             for i in range(count)]  # fmt: skip
    try:
        yield procs
    finally:
        for proc in procs:
            kill(proc)


class StoreProbe:
    """Reads the newest workflow's times from a SQLite store, read-only, on one connection.

    The end of a run is polled every few milliseconds while the system under
    test works: opening a connection per look (and reading the schema each
    time) would take CPU from the very processes being timed.
    """

    def __init__(self, db: Path):
        self.db = db
        self._conn: sqlite3.Connection | None = None

    def workflow_times(self) -> tuple[float, float | None, str] | None:
        """(created, finished, state) of the newest workflow, or None before there is one."""
        if self._conn is None:
            if not self.db.exists():
                return None
            # asyncio callers poll from worker threads, one look at a time
            self._conn = sqlite3.connect(
                f"file:{self.db}?mode=ro", uri=True, timeout=5, check_same_thread=False
            )
        try:
            return self._conn.execute(
                "SELECT created, finished, state FROM workflow ORDER BY id DESC LIMIT 1"
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # schema not created yet

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its direct children (gunicorn's master and its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of ``pids`` and their waited-for children (commands run)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])
    return total / TICK


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
