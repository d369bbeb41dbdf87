"""One timed run of a DAG on each system: STQ server + 4 runners, ``stq run -j 4``, make -j4.

STQ times are read from the store: from the workflow's creation (the commit of
its submit) to its terminal commit, with the server and runners already up and
idle (their start-up is not part of the workload). ``stq run`` is also timed as
a whole command (server and runner start-up and shutdown included).
"""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from bench import procs

JOBS = 4


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds, submit -> terminal (make: the whole command)
    command: float | None = None  # whole command wall time, when it differs
    cpu: float | None = None  # CPU seconds of server, runners and commands, during the run


def _await_terminal(db: Path, timeout: float = 300) -> tuple[float, float]:
    """(created, finished) of the newest workflow once it is terminal."""
    holder: list = []
    probe = procs.StoreProbe(db)

    def done() -> bool:
        row = probe.workflow_times()
        if row and row[1] is not None:
            holder.append(row)
            return True
        return False

    try:
        procs.wait_for(done, timeout, "the workflow to finish", 0.01)
    finally:
        probe.close()
    created, finished, state = holder[0]
    if state != "completed":
        raise SystemExit(f"benchmark: workflow ended {state}")
    return created, finished


def stq_server(
    workflow: Path,
    tmp: Path,
    workers: int | None = None,
    plain: bool = False,
    stq: str = procs.STQ,
) -> Timing:
    """A fresh ``stq server`` (or plain gunicorn) and 4 ``stq worker``s of the build
    ``stq``, idle; submit; wait."""
    db = tmp / f"server-{time.monotonic_ns()}.db"
    document = yaml.safe_load(workflow.read_text())
    with (
        procs.server(db, workers, plain=plain, stq=stq) as (url, server),
        procs.runners(url, JOBS, tmp, stq=stq) as runners,
    ):
        time.sleep(1.5)  # runners imported and idle in their long polls
        pids = procs.process_tree(server.pid) + [r.pid for r in runners]
        cpu = procs.cpu_seconds(pids)
        answer = requests.post(f"{url}/api/v1/workflows", json=document, timeout=120)
        answer.raise_for_status()
        created, finished = _await_terminal(db)
        cpu = procs.cpu_seconds(pids) - cpu
    return Timing(finished - created, cpu=cpu)


def plain_gunicorn(workflow: Path, tmp: Path) -> Timing:
    """As ``stq_server``, with the recommended plain gunicorn command line."""
    return stq_server(workflow, tmp, plain=True)


def stq_run(workflow: Path, tmp: Path) -> Timing:
    """``stq run FILE -j 4 --db`` as a user types it."""
    db = tmp / f"run-{time.monotonic_ns()}.db"
    started = time.perf_counter()
    subprocess.run(
        [procs.STQ, "run", str(workflow), "-j", str(JOBS), "--db", str(db)],
        env=procs.clean_env(),
        cwd=tmp,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    command = time.perf_counter() - started
    created, finished = _await_terminal(db, timeout=5)
    return Timing(finished - created, command)


def make(makefile: Path, tmp: Path) -> Timing:
    """GNU make -j4 on the generated Makefile."""
    started = time.perf_counter()
    before = _children_cpu()
    subprocess.run(
        ["make", "-j", str(JOBS), "-s", "-f", str(makefile), "all"],
        cwd=tmp,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return Timing(time.perf_counter() - started, cpu=_children_cpu() - before)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


SYSTEMS = {
    "STQ server + 4 runners": "server",
    "plain gunicorn + 4 runners": "plain",
    "stq run -j 4": "run",
    "GNU make -j4": "make",
}
