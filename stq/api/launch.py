"""``stq server``: ``stq.api:app`` under gunicorn with settings that suit long polls.

Claims are long polls (up to 30 s) that hold a thread each, and each runner
keeps one connection busy with a request per task, so the workers are
gunicorn's threaded worker with STQ's policies (``stq.api.serving.StqWorker``)
and threads enough for every waiting runner. Plain ``gunicorn stq.api:app``
serves the same API, more slowly. Binding beyond loopback with no
``STQ_TOKEN`` would hand anyone on the network a way to run commands on every
runner, so it is refused unless ``--insecure`` says the user means it.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

from stq.errors import StqError, UsageError
from stq.settings import DEFAULT_DB, allowed_hosts, heartbeat_timeout, is_loopback, parse_host
from stq.store import sqlite_path

DEFAULT_BIND = "127.0.0.1:8000"
WORKER_CLASS = "stq.api.serving.StqWorker"
#: Threads per worker process: one per request in flight, long polls included. A
#: thread is started only when needed, and one waiting costs ~20 KiB.
THREADS = 1000
#: Connections per worker process; beyond it idle ones are closed to make room. It
#: must exceed the threads: gunicorn keeps alive only ``connections - threads``.
WORKER_CONNECTIONS = 2000
#: Seconds an idle keep-alive connection stays open (runners reconnect cheaply).
KEEPALIVE = 5
#: gunicorn's options for the worker processes, as ``stq server`` and the tests run them.
WORKER_OPTIONS = (
    *("--worker-class", WORKER_CLASS),
    *("--threads", str(THREADS)),
    *("--worker-connections", str(WORKER_CONNECTIONS)),
    *("--keep-alive", str(KEEPALIVE)),
)
#: The default's ceiling: every worker process holds its own store connections
#: (PostgreSQL allows 100 in all by default) and memory.
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """Two gunicorn workers per CPU this process may use, at most ``MAX_DEFAULT_WORKERS``.

    A runner's requests all come down its one connection, so they are served
    by one worker process; two runners in one process wait on each other's
    GIL while the other core may be free. On the 2-core benchmark machine
    (2026-12-01, alternating runs) 4 workers beat 2 on W1 (528 against 494
    tasks/s, medians of 4) and W3 (522 and 549 against 492 and 460), and tied
    on W2's chain, where one request at a time is in flight.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, 2 * cpus))


def split_bind(bind: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port), with a clear error for anything else."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]"), int(port)


def gunicorn_argv(bind: str, workers: int) -> list[str]:
    """The gunicorn command line for ``stq.api:app``.

    No access log unless ``STQ_ACCESS_LOG`` is set: formatting a line per
    request was ~3% of the server's time per task in the benchmark profile,
    even when written to /dev/null.
    """
    access = ["--access-logfile", "-"] if os.environ.get("STQ_ACCESS_LOG") else []
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "stq.api:app",
        "--bind",
        bind,
        "--workers",
        str(workers),
        *WORKER_OPTIONS,
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        # gunicorn 27's admin socket is one path per user (~/.gunicorn/gunicorn.ctl):
        # several servers on one host would take it from each other, and STQ needs none.
        "--no-control-socket",
        *access,
    ]


def serve(
    bind: str,
    db: str | None,
    workers: int,
    insecure: bool,
    token: str | None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Check the bind is safe, then replace this process with gunicorn."""
    host, _ = split_bind(bind)
    if not is_loopback(host) and not token and not insecure:
        raise UsageError(
            f"refusing to bind {host} with no STQ_TOKEN: set STQ_TOKEN, "
            "or pass --insecure if this network is trusted"
        )
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    env = dict(os.environ if environ is None else environ)
    if db:
        env["STQ_DB"] = db
    _check_settings(env)
    print(announcement(bind, env.get("STQ_DB") or DEFAULT_DB), flush=True)
    raise_open_files_limit()
    argv = gunicorn_argv(bind, workers)
    os.execve(argv[0], argv, env)
    return 0  # not reached


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one; the limit now in force.

    Every connected runner holds a connection, and many systems start
    processes at a soft limit of 1,024 descriptors: a few hundred runners per
    worker would then run the server out of them, while the hard limit, which
    any process may rise to, is usually far higher.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # e.g. an infinite hard limit the kernel caps lower
            return soft
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def announcement(bind: str, db: str) -> str:
    """The line a user reads first: where the dashboard is and which store holds the state."""
    host, port = split_bind(bind)
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"  # listening everywhere: loopback reaches it from here
    parts = urlsplit(db)
    if parts.scheme.startswith("postgres"):
        port_part = f":{parts.port}" if parts.port else ""
        # The password, if the URL has one, is never printed.
        store = f"PostgreSQL {parts.hostname or 'localhost'}{port_part}{parts.path}"
    else:
        store = f"SQLite {os.path.abspath(db)}"
    return f"stq server: dashboard at http://{shown}:{port}/ , store: {store}"


def _check_settings(env: Mapping[str, str]) -> None:
    """Refuse, before gunicorn starts, what would otherwise only show in answers or never.

    A misspelt heartbeat timeout would silently be 60 s, and a SQLite file in
    a directory that does not exist would only be reported by every request
    as a 503. (An unreachable PostgreSQL is not refused: the server answers
    503 until it is up, as for an outage later on.)
    """
    for entry in allowed_hosts(env.get("STQ_ALLOWED_HOSTS", "")):
        if parse_host(entry) is None:
            raise UsageError(
                f"STQ_ALLOWED_HOSTS: {entry!r} is not a host name: expected NAME or NAME:PORT, "
                "comma-separated, e.g. stq.example.com,10.0.0.5:8000"
            )
    if heartbeat_timeout(env.get("STQ_HEARTBEAT_TIMEOUT", "")) is None:
        raise UsageError(
            f"STQ_HEARTBEAT_TIMEOUT={env['STQ_HEARTBEAT_TIMEOUT']!r}: "
            "expected a positive number of seconds, e.g. 60"
        )
    db = env.get("STQ_DB") or DEFAULT_DB
    try:
        path = sqlite_path(db)
    except StqError as ex:
        raise UsageError(f"--db: {ex.message}") from None
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--db {db!r}: the directory {folder!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"--db {db!r} is a directory: give a file path, e.g. {db}/stq.db")
