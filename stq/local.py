"""``stq run``: a whole workflow on this machine, with nothing to start by hand.

It starts the real server (gunicorn ``stq.api:app``) on a free loopback port
with a SQLite file in a temporary directory (or ``--db``), protected by a
random token, and N ``stq worker`` subprocesses that hold every label used in
the workflow, so labelled tasks run here too. Everything it starts lives in
its own process group and is stopped in every exit path (completion, failure,
Ctrl-C, SIGTERM, an error), so nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

from stq.client import Client, workflow_document
from stq.errors import EXIT_FAILED, EXIT_OK, ServerUnreachable
from stq.model import WorkflowSpec
from stq.progress import Progress, summary
from stq.server import gunicorn_argv

log = logging.getLogger("stq.run")
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: gunicorn workers of the embedded server. Measured on the 2-core benchmark machine:
#: 2 beat 1 (W3 3.2 s vs 3.8 s, W2 0.46 s vs 0.61 s), since one process's GIL caps the
#: server at one core while the runners' commands wait on it. ``stq server``'s default
#: (4 there) serves W1 about 7% faster but starts 0.25 s slower, which a small
#: workflow run on a laptop or in CI feels more (2026-12-01).
SERVER_WORKERS = 2


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while the workflow runs."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workflow_labels(spec: WorkflowSpec) -> list[str]:
    """Every label any task asks for: the local runners hold them all."""
    return sorted({label for task in spec.tasks for label in task.labels})


def run_local(
    spec: WorkflowSpec, jobs: int, db: str | None, out: TextIO, verbose: bool = False
) -> int:
    """Run ``spec`` to the end with ``jobs`` local runners; 0 completed, 1 failed."""
    with ExitStack() as stack, _stop_signals_raise():
        try:
            return _run(stack, spec, jobs, db, out, verbose)
        except Interrupted:
            out.write("\ninterrupted: stopping every process\n")
            return EXIT_FAILED


def _run(
    stack: ExitStack, spec: WorkflowSpec, jobs: int, db: str | None, out: TextIO, verbose: bool
) -> int:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stq-run-")))
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "STQ_TOKEN": token, "STQ_DB": db or str(tmp / "stq.db")}
    logs = tmp / "stq.log" if not verbose else None
    url, server = stack.enter_context(_server(env, logs))
    # Runners start while gunicorn boots: their imports overlap its own.
    stack.enter_context(_runners(url, env, jobs, workflow_labels(spec), logs))
    client = Client(url, token)
    stack.callback(client.close)
    _wait_healthy(server, client, logs)
    wf_id = client.submit(workflow_document(spec))["id"]
    try:
        final = Progress(client, out, tty=out.isatty()).follow(wf_id)
    except Interrupted:
        out.write("\ninterrupted: cancelling the workflow\n")
        client.cancel(wf_id)
        return EXIT_FAILED
    summary(client, final, out)
    return EXIT_OK if final["state"] == "completed" else EXIT_FAILED


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Ctrl-C and SIGTERM become ``Interrupted`` once; later ones cannot break the cleanup."""

    def handler(signum: int, frame: object) -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _spawn(argv: Sequence[str], env: dict[str, str], logs: Path | None) -> subprocess.Popen:
    sink = open(logs, "ab") if logs else None  # closed right after the fork
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink if sink else None,
            stderr=subprocess.STDOUT if sink else None,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
    finally:
        if sink:
            sink.close()


def _stop(
    proc: subprocess.Popen, signals: Sequence[int] = (signal.SIGTERM,), timeout=STOP_TIMEOUT
) -> None:
    """Signal a child's process group, wait, and SIGKILL it if it does not go."""
    for sig in signals:
        if proc.poll() is None:
            _killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    _killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def _server(env: dict[str, str], logs: Path | None) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn on a free loopback port (its URL and process); stopped on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = gunicorn_argv(f"127.0.0.1:{port}", workers=SERVER_WORKERS)
    proc = _spawn(argv, env, logs)
    try:
        yield url, proc
    finally:
        # Runners are gone and every change is one committed transaction (SPEC section 3),
        # so a graceful stop would only wait out their abandoned long polls.
        _stop(proc, signals=(signal.SIGKILL,), timeout=STOP_TIMEOUT)


def _wait_healthy(proc: subprocess.Popen, client: Client, logs: Path | None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if client.health():
                return
        except ServerUnreachable:
            time.sleep(0.02)
    tail = logs.read_text(errors="replace")[-2000:] if logs and logs.exists() else ""
    raise ServerUnreachable(f"the embedded server did not start:\n{tail}".rstrip())


@contextmanager
def _runners(
    url: str, env: dict[str, str], jobs: int, labels: list[str], logs: Path | None
) -> Iterator[list[subprocess.Popen]]:
    """``jobs`` runner subprocesses; on exit: drain (SIGTERM twice kills commands), wait."""
    procs: list[subprocess.Popen] = []
    try:
        for i in range(jobs):
            argv = [sys.executable, "-m", "stq", "worker", url, "--name", f"local-{i + 1}"]
            if labels:
                argv += ["--labels", ",".join(labels)]
            procs.append(_spawn(argv, env, logs))
        yield procs
    finally:
        _signal_runners(procs)
        for proc in procs:
            _stop(proc, signals=())


def _signal_runners(procs: list[subprocess.Popen]) -> None:
    """Two SIGTERMs to each runner alone: stop claiming, and kill any command now."""
    for _ in range(2):
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)  # let the first handlers run before the second signal arrives
