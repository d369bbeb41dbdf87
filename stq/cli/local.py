"""``stq run``: a whole workflow on this machine, with nothing to start by hand.

It starts the real server (gunicorn ``stq.api:app``) on a free loopback port
with a SQLite file in a temporary directory (or ``--db``), protected by a
random token, and N ``stq worker`` subprocesses that hold every label used in
the workflow, so labelled tasks run here too. Everything it starts lives in
its own process group and is stopped in every exit path (completion, failure,
Ctrl-C, SIGTERM, an error), so nothing is left behind; and each is tethered
to it (``stq.cli.tether``), so even a SIGKILL of ``stq run`` leaves nothing either.
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
from typing import Any, TextIO

from stq.api.launch import gunicorn_argv
from stq.cli.progress import Progress, summary
from stq.cli.tether import Tether, tethered
from stq.errors import EXIT_FAILED, EXIT_OK, ServerUnreachable
from stq.model import WorkflowSpec
from stq.worker.client import Client

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
    """Ctrl-C or SIGTERM while the workflow runs (raised only where ``_StopSignals`` allows)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workflow_labels(spec: WorkflowSpec) -> list[str]:
    """Every label any task asks for: the local runners hold them all."""
    return sorted({label for task in spec.tasks for label in task.labels})


def run_local(
    spec: WorkflowSpec,
    body: bytes,
    jobs: int,
    db: str | None,
    out: TextIO,
    verbose: bool = False,
    junit: str | None = None,
) -> int:
    """Run ``spec`` to the end with ``jobs`` local runners; 0 completed, 1 failed.

    ``body`` is what is submitted: the file as written (``stq.loader.submit_body``),
    which the embedded server expands as any server would; ``spec``, the same
    workflow checked, says which labels the runners need.
    ``junit``: also write a JUnit XML report there (before the server stops).
    """
    # The signals are handled outside the stack, so they stay handled while it unwinds.
    with _StopSignals() as stop, ExitStack() as stack:
        try:
            return _run(stack, stop, spec, body, jobs, db, out, verbose, junit)
        except Interrupted:
            out.write("\ninterrupted: stopping every process\n")
            return EXIT_FAILED


def _run(
    stack: ExitStack,
    stop: _StopSignals,
    spec: WorkflowSpec,
    body: bytes,
    jobs: int,
    db: str | None,
    out: TextIO,
    verbose: bool,
    junit: str | None,
) -> int:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stq-run-")))
    token = secrets.token_urlsafe(24)
    tether = Tether()
    stack.callback(tether.close)  # last: every child is stopped by then
    env = {**os.environ, "STQ_TOKEN": token, "STQ_DB": db or str(tmp / "stq.db")}
    logs = tmp / "stq.log" if not verbose else None
    url, server = _start_server(stack, tether, env, logs)
    # Runners start while gunicorn boots: their imports overlap its own.
    _start_runners(stack, stop, tether, url, env, jobs, workflow_labels(spec), logs)
    client = Client(url, token)
    stack.callback(client.close)
    wf_id = None
    try:
        with stop.interruptible():
            _wait_healthy(server, client, logs)
            wf_id = client.submit(body)["id"]
            final = Progress(client, out, tty=out.isatty()).follow(wf_id)
    except Interrupted:
        if wf_id is None:
            raise
        out.write("\ninterrupted: cancelling the workflow\n")
        client.cancel(wf_id)
        return EXIT_FAILED
    summary(client, final, out)
    if junit:
        from stq.cli.junit import ApiAttempts, write_report

        write_report(junit, final, ApiAttempts(client))
    return EXIT_OK if final["state"] == "completed" else EXIT_FAILED


class _StopSignals:
    """Ctrl-C and SIGTERM, turned into one ``Interrupted`` raised only where it is safe.

    A handler that raises wherever the signal lands can land between a child's
    fork and the line that records it for stopping: that child then outlives
    ``stq run`` (a runner retrying a dead server for ever). So the first signal
    is only noted, and raised as ``Interrupted`` at the next ``check()`` or
    inside an ``interruptible()`` block, which hold no process start. Later
    signals are ignored: nothing can break the clean-up.
    """

    def __init__(self) -> None:
        self.requested = False
        self._armed = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: object) -> None:
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)
        self.requested = True
        if self._armed:
            self._armed = False
            raise Interrupted

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal came since the last look."""
        if self.requested:
            raise Interrupted

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a signal interrupts at once: it must start no process."""
        self.check()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False


def _spawn(
    argv: Sequence[str], tether: Tether, env: dict[str, str], logs: Path | None
) -> subprocess.Popen:
    """``python -m MODULE ...`` started tethered to this process, in its own session."""
    sink = open(logs, "ab") if logs else None  # closed right after the fork
    try:
        return subprocess.Popen(
            tethered(argv),
            env=tether.env(env),
            pass_fds=tether.pass_fds,
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


def _start_server(
    stack: ExitStack, tether: Tether, env: dict[str, str], logs: Path | None
) -> tuple[str, subprocess.Popen]:
    """gunicorn on a free loopback port (its URL and process), stopped when ``stack`` closes.

    Called where no signal raises (see ``_StopSignals``), so the process is
    always on the stack once it exists.
    """
    port = free_port()
    argv = gunicorn_argv(f"127.0.0.1:{port}", workers=SERVER_WORKERS)
    proc = _spawn(argv, tether, env, logs)
    # Runners are gone by then and every change is one committed transaction, so a
    # graceful stop would only wait out their abandoned long polls.
    stack.callback(_stop, proc, signals=(signal.SIGKILL,), timeout=STOP_TIMEOUT)
    return f"http://127.0.0.1:{port}", proc


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


def _start_runners(
    stack: ExitStack,
    stop: _StopSignals,
    tether: Tether,
    url: str,
    env: dict[str, str],
    jobs: int,
    labels: list[str],
    logs: Path | None,
) -> None:
    """``jobs`` runner subprocesses, each recorded for stopping before the next starts.

    A signal stops the spawning between two runners (``stop.check``), never
    between a fork and its record. When ``stack`` closes: drain (SIGTERM twice
    kills commands), wait, SIGKILL what is left.
    """
    procs: list[subprocess.Popen] = []
    stack.callback(_stop_runners, procs)
    for i in range(jobs):
        stop.check()
        argv = [sys.executable, "-m", "stq", "worker", url, "--name", f"local-{i + 1}"]
        if labels:
            argv += ["--labels", ",".join(labels)]
        procs.append(_spawn(argv, tether, env, logs))


def _stop_runners(procs: list[subprocess.Popen]) -> None:
    """Drain every runner at once, then reap each (SIGKILL after ``STOP_TIMEOUT``)."""
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
