"""The scale section: a 100,000-task workflow, and claim latency as the queue grows.

- validate: ``stq validate`` of the 1,000-layer file (a whole command, as typed);
- submit: ``stq submit`` of it to a fresh ``stq server`` (client validation + POST + store);
- each of those four: the median of the repetitions (a single run of a 10 s command
  moved by half from one run to the next on a shared 2-core machine);
- the same two for 100,000 tasks made by matrix expansion (400 matrix tasks of
  250 combinations, sent as written: the server expands them);
- claim latency: median of client-timed ``POST /attempts/claim`` (wait 0) against a
  server holding 1,000 and one holding 100,000 claimable tasks, both up at once
  and asked in turns, a new connection each turn: one connection's latency
  varies by ~50% with where the scheduler puts the two ends (1.5-2.3 ms on
  one server in one minute, 2026-12-01), which measuring one server after
  the other on one connection each read as a difference between them;
- peak RSS (VmHWM) of every server process after all of that.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import dags, procs
from bench.bench_validate import write_matrices

#: Claims per server in all, asked in ``TURNS`` turns per server.
CLAIMS = 300
TURNS = 6
#: Combinations per matrix task in the matrix-made workflow (at most 256 are allowed).
MATRIX_COMBINATIONS = 250


@dataclass
class Scale:
    tasks: int
    validate: float = 0.0
    submit: float = 0.0
    matrix_validate: float = 0.0
    matrix_submit: float = 0.0
    claim_ms: dict[int, float] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=procs.clean_env(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _claim_times(url: str, claims: int) -> list[float]:
    """Seconds per claim that finds work, on one new connection (attempts are left running)."""
    session = requests.Session()
    times = []
    for _ in range(claims):
        started = time.perf_counter()
        answer = session.post(f"{url}/api/v1/attempts/claim", json={"runner": "b"}, timeout=30)
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"benchmark: claim answered {answer.status_code}")
    session.close()
    return times


def _record_rss(scale: Scale, label: str, pid: int) -> None:
    """Each process's peak resident memory, the highest of the repetitions."""
    for i, proc in enumerate(procs.process_tree(pid)):
        key = f"{label} {'master' if i == 0 else f'worker {i}'}"
        scale.rss_mib[key] = max(scale.rss_mib.get(key, 0.0), procs.peak_rss_mib(proc))


def _validate_and_submit(
    scale: Scale, workflow: Path, tmp: Path, repeat: int, label: str | None = None
) -> tuple[float, float]:
    """Medians of ``repeat`` runs: ``stq validate``, and ``stq submit`` to a fresh server."""
    validates, submits = [], []
    for _ in range(repeat):
        validates.append(_timed([procs.STQ, "validate", str(workflow)], tmp))
        with procs.server(tmp / f"{workflow.stem}-{time.monotonic_ns()}.db") as (url, proc):
            submits.append(_timed([procs.STQ, "submit", str(workflow), "--server", url], tmp))
            if label is not None:
                _record_rss(scale, label, proc.pid)
    return statistics.median(validates), statistics.median(submits)


def measure(tmp: Path, depth: int = 1000, width: int = 100, repeat: int = 1) -> Scale:
    """Everything above for a ``depth`` x ``width`` layered workflow."""
    n = depth * width
    scale = Scale(tasks=n)
    big = dags.write_workflow(tmp / "big.yaml", "big", dags.layers(depth, width))
    scale.validate, scale.submit = _validate_and_submit(scale, big, tmp, repeat, "layered")
    matrices = tmp / "matrices.yaml"
    write_matrices(matrices, n // MATRIX_COMBINATIONS, 25, MATRIX_COMBINATIONS // 25, 40)
    scale.matrix_validate, scale.matrix_submit = _validate_and_submit(scale, matrices, tmp, repeat)
    sizes = (1_000, n)
    with ExitStack() as servers:
        running = {}
        for claimable in sizes:
            flat = dags.write_workflow(
                tmp / f"flat{claimable}.yaml", "flat", dags.fan_out(claimable)
            )
            url, proc = servers.enter_context(procs.server(tmp / f"flat{claimable}.db"))
            _timed([procs.STQ, "submit", str(flat), "--server", url], tmp)
            running[claimable] = url, proc
        times: dict[int, list[float]] = {claimable: [] for claimable in sizes}
        for _ in range(TURNS):
            for claimable in sizes:
                times[claimable] += _claim_times(running[claimable][0], CLAIMS // TURNS)
        for claimable in sizes:
            scale.claim_ms[claimable] = statistics.median(times[claimable]) * 1000
            _record_rss(scale, f"flat {claimable:,}", running[claimable][1].pid)
    return scale
