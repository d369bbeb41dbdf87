"""STQ's benchmark suite, side by side with GNU make: one command, one table.

    .venv/bin/python bench/run.py            # full: medians of 3, 100,000 tasks, 60 s recovery
    .venv/bin/python bench/run.py --quick    # one repetition, 10,000 tasks, 6 s heartbeat timeout

Needs the ``bench`` extra (matplotlib) and GNU make. Prints the table and
writes ``bench/results/results.md`` and ``bench/results/chart.png``
(``--quick`` writes ``results-quick.md`` / ``chart-quick.png`` so the committed
full results are not overwritten by a short run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dags, recovery, scale, systems  # noqa: E402
from bench.report import Results, chart, markdown, text  # noqa: E402

SYSTEMS = [
    "STQ server + 4 runners",
    "plain gunicorn + 4 runners",
    "stq run -j 4",
    "GNU make -j4",
]


def run_workloads(res: Results, repeat: int, tmp: Path) -> None:
    """Each repetition runs every workload on every system in turn (alternating)."""
    files = {}
    for name in dags.WORKLOADS:
        workflow, makefile, res.sizes[name] = dags.write_workload(name, tmp)
        files[name] = (workflow, makefile)
    for rep in range(repeat):
        for name, (workflow, makefile) in files.items():
            timings = {
                SYSTEMS[0]: systems.stq_server(workflow, tmp),
                SYSTEMS[1]: systems.plain_gunicorn(workflow, tmp),
                SYSTEMS[2]: systems.stq_run(workflow, tmp),
                SYSTEMS[3]: systems.make(makefile, tmp),
            }
            for system, timing in timings.items():
                res.walls.setdefault((name, system), []).append(timing.wall)
                if timing.cpu is not None:
                    res.cpus.setdefault((name, system), []).append(timing.cpu)
            res.commands.setdefault(name, []).append(timings[SYSTEMS[2]].command or 0.0)
            walls = ", ".join(f"{s}: {t.wall:.2f}s" for s, t in timings.items())
            print(f"  rep {rep + 1}/{repeat} {name}: {walls}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (see the docstring)")
    parser.add_argument("--repeat", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument("--skip-recovery", action="store_true", help="leave out the ~60 s test")
    args = parser.parse_args()
    if shutil.which("make") is None:
        print("bench: GNU make is needed (apt-get install make)", file=sys.stderr)
        return 2
    repeat = args.repeat or (1 if args.quick else 3)
    res = Results(sizes={})
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="stq-bench-") as name:
        tmp = Path(name)
        print(f"workloads, {repeat} repetition(s):", flush=True)
        run_workloads(res, repeat, tmp)
        print("scale:", flush=True)
        res.scale = scale.measure(tmp, depth=100 if args.quick else 1000, repeat=repeat)
        if args.quick:
            res.notes.append("--quick: scale measured at 10,000 tasks, not 100,000.")
        if not args.skip_recovery:
            print("dead-runner recovery:", flush=True)
            res.recovery_timeout = 6.0 if args.quick else 60.0
            res.recovery = recovery.measure(tmp, 6.0 if args.quick else None)
            if args.quick:
                res.notes.append("--quick: recovery ran with STQ_HEARTBEAT_TIMEOUT=6, not 60.")
    res.notes.append(
        "Load average (1, 5, 15 min) before the run: "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (anything above 0 is other work "
        "competing for the 2 cores)."
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (out / f"results{suffix}.md").write_text(markdown(res, SYSTEMS))
    chart(res, SYSTEMS, out / f"chart{suffix}.png")
    print()
    print(text(res, SYSTEMS))
    print(f"\nwritten: {out / f'results{suffix}.md'}, {out / f'chart{suffix}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
