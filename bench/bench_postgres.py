"""Fan-out throughput on SQLite vs PostgreSQL, one server vs two.

The W1 fan-out of bench/run.py (2,000 tasks of ``true``, 4 ``stq worker``
processes, each server ``stq server`` with default settings) on:

- ``SQLite, 1 server``: the default store;
- ``PostgreSQL, 1 server``: the same server on a fresh PostgreSQL database;
- ``PostgreSQL, 2 servers``: two servers on one database, each runner given
  both URLs (``stq worker URL1 URL2``), half of them listing the other first.

Systems alternate within each repetition; medians are reported. Wall time is
the workflow's ``created`` to ``finished`` as the store recorded them (read
through the API), with servers and runners started and idle before the submit.
PostgreSQL runs with its defaults (``synchronous_commit=on``: every commit is
flushed to disk, a stronger promise than SQLite's ``synchronous=NORMAL``).
Each PostgreSQL run gets a fresh database from ``STQ_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards.

    .venv/bin/python bench/bench_postgres.py [--tasks N] [--runners N] [--repeat N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import procs  # noqa: E402
from stq.api.launch import default_workers  # noqa: E402
from tests.pg import admin, database_url  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "postgres.md"
SYSTEMS = ("SQLite, 1 server", "PostgreSQL, 1 server", "PostgreSQL, 2 servers")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (STQ creates its schema); dropped afterwards."""
    name = f"stq_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def server(db: str, cwd: Path, workers: int | None = None) -> Iterator[str]:
    """``stq server --db DB`` on a free port, default settings unless ``workers``; its URL."""
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [procs.STQ, "server", "--bind", f"127.0.0.1:{port}", "--db", db]
    proc = procs.spawn(argv + ([] if workers is None else ["--workers", str(workers)]),
                       procs.clean_env(), cwd)  # fmt: skip
    try:
        procs.wait_for(lambda: procs.healthy(url), 30, "the server to start", 0.02)
        yield url
    finally:
        procs.kill(proc)


def fan_out(urls: list[str], tasks: int, runners: int, cwd: Path) -> float:
    """Seconds from the submit's commit to the terminal commit of ``tasks`` x ``true``."""
    with ExitStack() as stack:
        for n in range(runners):
            order = urls[n % len(urls) :] + urls[: n % len(urls)]
            proc = procs.spawn([procs.STQ, "worker", *order, "--name", f"r{n}"],
                               procs.clean_env(), cwd)  # fmt: skip
            stack.callback(procs.kill, proc)
        time.sleep(1.5)  # runners imported and idle in their long polls
        doc = {"name": "fan-out", "tasks": {f"t{i}": {"command": "true"} for i in range(tasks)}}
        answer = requests.post(f"{urls[0]}/api/v1/workflows", json=doc, timeout=120)
        answer.raise_for_status()
        wid = answer.json()["id"]
        found: list[dict] = []

        def finished() -> bool:
            listed = requests.get(f"{urls[0]}/api/v1/workflows", timeout=10).json()
            row = next(w for w in listed["workflows"] if w["id"] == wid)
            found[:] = [row]
            return row["finished"] is not None

        procs.wait_for(finished, 300, "the workflow to finish", 0.05)
    if found[0]["state"] != "completed":
        raise SystemExit(f"benchmark: workflow ended {found[0]['state']}")
    finished_at, created_at = (
        datetime.fromisoformat(found[0][k]) for k in ("finished", "created")
    )
    return (finished_at - created_at).total_seconds()


def one_run(system: str, args: argparse.Namespace, tmp: Path) -> float:
    with ExitStack() as stack:
        if system.startswith("SQLite"):
            dbs = [str(tmp / f"bench-{time.monotonic_ns()}.db")]
        else:
            dbs = [stack.enter_context(fresh_database())] * (2 if "2 servers" in system else 1)
        urls = [stack.enter_context(server(db, tmp, args.workers)) for db in dbs]
        return fan_out(urls, args.tasks, args.runners, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers per server (default: stq server's)"
    )
    args = parser.parse_args()
    walls: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    with tempfile.TemporaryDirectory() as tmp_dir:
        for rep in range(args.repeat):
            for system in SYSTEMS:
                walls[system].append(one_run(system, args, Path(tmp_dir)))
                print(f"  rep {rep + 1}/{args.repeat} {system}: {walls[system][-1]:.2f} s",
                      flush=True)  # fmt: skip
    base = args.tasks / statistics.median(walls[SYSTEMS[0]])
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
        f"cores: {args.tasks} x `true`, {args.runners} `stq worker` processes, medians of "
        f"{args.repeat}; gunicorn workers per server: "
        f"{args.workers or f'default ({default_workers()})'}.",
        "",
        "| store | wall (s) | tasks/s | vs SQLite |",
        "|---|---|---|---|",
    ]
    for system in SYSTEMS:
        wall = statistics.median(walls[system])
        rate = args.tasks / wall
        lines.append(f"| {system} | {wall:.2f} | {rate:,.0f} | {rate / base:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
