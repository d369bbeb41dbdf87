"""Two builds of STQ side by side, each run followed by GNU make: is a change faster?

    git worktree add ../stq-before HEAD~1
    (cd ../stq-before && python3 -m venv .venv && .venv/bin/pip install -e .)
    .venv/bin/python bench/ab.py ../stq-before/.venv/bin/stq --repeat 7

Each repetition runs every chosen workload on ``stq server`` and 4 runners of
each build in turn (the one given first, then this checkout's, and the other
way round in the next repetition, so that a drift of the host's pace favours
neither), each run followed by make on the same DAG, and keeps its ratio to
that make run. On a shared 2-core host the machine's own pace moves by a fifth
within minutes, more than most changes are worth; a ratio to a make run
seconds away cancels much of it, and the range of the ratios shows what is
left. Prints, per workload and build,
the median ratio, its range and the CPU per task.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dags, procs, systems  # noqa: E402


def compare(
    builds: dict[str, str], workloads: list[str], repeat: int, workers: int | None, tmp: Path
) -> None:
    """Run and print the comparison (see the module docstring)."""
    for name in workloads:
        workflow, makefile, tasks = dags.write_workload(name, tmp)
        chain = "chain" in name  # a time per hop: the multiple of make's, lower is better
        ratios: dict[str, list[float]] = {label: [] for label in builds}
        cpus: dict[str, list[float]] = {label: [] for label in builds}
        order = list(builds.items())
        for rep in range(repeat):
            for label, stq in order if rep % 2 == 0 else reversed(order):
                run = systems.stq_server(workflow, tmp, workers=workers, stq=stq)
                make = systems.make(makefile, tmp)
                assert run.cpu is not None  # stq_server always measures it
                ratios[label].append(run.wall / make.wall if chain else make.wall / run.wall)
                cpus[label].append(run.cpu * 1000 / tasks)
        for label, each in ratios.items():
            print(
                f"{name:11s} {label:6s} {'hop' if chain else 'rate'} "
                f"{statistics.median(each):.3f}x make's (repetitions {min(each):.3f}-"
                f"{max(each):.3f}x), CPU {statistics.median(cpus[label]):.2f} ms/task",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the other build's `stq` executable")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--workers", type=int, help="`stq server --workers` for both builds")
    parser.add_argument(
        "--workload",
        action="append",
        choices=list(dags.WORKLOADS),
        help="a workload to run (repeatable; default all)",
    )
    args = parser.parse_args()
    base = Path(args.base).resolve()
    if not os.access(base, os.X_OK) or base.is_dir():
        parser.error(f"{args.base}: no such executable (the other build's .venv/bin/stq)")
    builds = {"base": str(base), "this": procs.STQ}
    with tempfile.TemporaryDirectory(prefix="stq-ab-") as name:
        compare(
            builds, args.workload or list(dags.WORKLOADS), args.repeat, args.workers, Path(name)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
