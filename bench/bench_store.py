"""Store benchmarks against the store's speed targets, on a real SQLite file.

    .venv/bin/python bench/bench_store.py [--tasks 100000]

Measures: submitting a 100,000-task workflow (target < 10 s); claim latency
with 1,000 vs 100,000 claimable tasks (target: within 1.5x); claim plus
result of a trivial task (target: well under 2 ms of store time); peak
memory of this process with 100,000 tasks stored (target < 200 MiB).
Specs are built directly (no YAML), so only the store is measured.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stq.model import AttemptStatus, Report, TaskSpec, WorkflowSpec
from stq.store import open_store
from stq.store.sql import SqlStore

DONE = Report(AttemptStatus.COMPLETED, exit_code=0, output="ok\n")


def spec(n: int, name: str = "bench") -> WorkflowSpec:
    """``n`` tasks: a tenth of them depend on the task before (so edges are stored too)."""
    tasks = tuple(
        TaskSpec(f"t{i}", "true", depends_on=(f"t{i - 1}",) if i % 10 == 9 else ())
        for i in range(n)
    )
    return WorkflowSpec(name, tasks)


def timed_submit(store: SqlStore, n: int) -> float:
    start = time.perf_counter()
    store.submit_workflow(spec(n))
    return time.perf_counter() - start


def labelled_spec(n: int) -> WorkflowSpec:
    """``n`` tasks for other runners (label gpu) behind 1,000 for this one (label cpu)."""
    other = tuple(TaskSpec(f"g{i}", "true", labels=("gpu",), priority=1) for i in range(n))
    mine = tuple(TaskSpec(f"c{i}", "true", labels=("cpu",)) for i in range(1_000))
    return WorkflowSpec("labelled", other + mine)


def claim_latency(store: SqlStore, claims: int, labels: tuple[str, ...] = ()) -> float:
    """Median seconds per claim (the attempts are left running)."""
    times = []
    for _ in range(claims):
        start = time.perf_counter()
        claim = store.claim_attempt("bench", labels)
        times.append(time.perf_counter() - start)
        assert claim is not None
    return statistics.median(times)


def claim_and_report(store: SqlStore, rounds: int) -> float:
    """Mean seconds for one claim plus its result."""
    start = time.perf_counter()
    for _ in range(rounds):
        claim = store.claim_attempt("bench", [])
        assert claim is not None
        store.report_result(claim.attempt_id, DONE)
    return (time.perf_counter() - start) / rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = open_store(str(Path(tmp) / "small.db"))
        small.submit_workflow(spec(1_000))
        small_claim = claim_latency(small, 300)
        small.close()

        big = open_store(str(Path(tmp) / "big.db"))
        submit = timed_submit(big, args.tasks)
        big_claim = claim_latency(big, 300)
        per_task = claim_and_report(big, 2_000)
        big.list_workflows()
        big.metrics()
        big.close()

        labelled = open_store(str(Path(tmp) / "labelled.db"))
        labelled.submit_workflow(labelled_spec(args.tasks))
        labelled_claim = claim_latency(labelled, 300, ("cpu",))
        labelled.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    ratio = big_claim / small_claim
    print(f"submit {args.tasks} tasks:            {submit:8.2f} s   (target < 10 s)")
    print(f"claim, 1,000 claimable (median):    {small_claim * 1e3:8.3f} ms")
    print(
        f"claim, {args.tasks:,} claimable (median): {big_claim * 1e3:8.3f} ms  "
        f"ratio {ratio:.2f} (target <= 1.5)"
    )
    print(
        f"claim, labelled runner, {args.tasks:,} others' tasks first (median): "
        f"{labelled_claim * 1e3:.3f} ms"
    )
    print(f"claim + result, trivial task (mean): {per_task * 1e3:7.3f} ms (target < 2 ms)")
    print(f"peak RSS of this process:           {peak:8.1f} MiB (target < 200 MiB)")
    ok = submit < 10 and ratio <= 1.5 and per_task < 0.002 and peak < 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
