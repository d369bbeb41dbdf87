"""``stq worker``: a runner that claims attempts over HTTP and runs their commands."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

from stq.worker.loop import Runner, RunnerConfig
from stq.worker.signals import on_stop


def default_name() -> str:
    """host-pid: unique enough across a fleet, readable in the dashboard."""
    return f"{socket.gethostname()}-{os.getpid()}"


def run_worker(
    urls: Sequence[str],
    token: str | None = None,
    labels: Sequence[str] = (),
    name: str | None = None,
    exit_when_idle: float | None = None,
    workdir: Path | None = None,
) -> int:
    """Serve until stopped (or idle for ``exit_when_idle`` seconds); the exit code."""
    config = RunnerConfig(
        urls=tuple(u.rstrip("/") for u in urls),
        token=token,
        name=name or default_name(),
        labels=tuple(labels),
        exit_when_idle=exit_when_idle,
        workdir=workdir or Path.cwd(),
    )
    runner = Runner(config)
    with on_stop(runner.stop, runner.stop_now):
        return runner.run()
