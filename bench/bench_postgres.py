"""Fan-out throughput: SQLite vs PostgreSQL, one server vs two (issue 8).

Submits N trivial tasks, then R runner threads claim and complete them over
HTTP (``POST .../claim`` then ``POST .../result``: two requests per task, no
command is run) against:

- ``sqlite``: one gunicorn server on a SQLite file;
- ``postgres``: one gunicorn server on PostgreSQL;
- ``postgres x2``: two gunicorn servers on one PostgreSQL database, runners split.

Each server has ``--workers`` gunicorn workers. PostgreSQL gets a fresh
database per run (dropped afterwards) from ``STQ_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``).

    .venv/bin/python bench/bench_postgres.py [--tasks 2000] [--runners 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import LiveServer  # noqa: E402
from tests.pg import admin, database_url  # noqa: E402


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (STQ creates its schema); dropped afterwards."""
    name = f"stq_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin(f"CREATE DATABASE {name}")
    try:
        yield database_url(name)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drain(url: str, name: str) -> tuple[int, int]:
    """Claim and complete until nothing is left: (tasks done, 5xx answers seen)."""
    session = requests.Session()
    done = errors = 0
    while True:
        claim = session.post(f"{url}/api/v1/attempts/claim", json={"runner": name}, timeout=30)
        if claim.status_code == 204:
            return done, errors
        if claim.status_code >= 500:
            errors += 1
            continue
        aid = claim.json()["attempt_id"]
        answer = session.post(f"{url}/api/v1/attempts/{aid}/result", json={"status": "completed"})
        errors += answer.status_code >= 500
        done += 1


def run(label: str, db: str, servers: int, args: argparse.Namespace, tmp: Path) -> None:
    with ExitStack() as stack:
        started = []
        for n in range(servers):
            server = LiveServer(db=tmp / f"{label}-{n}.db", workers=args.workers)
            if db.startswith("postgresql://"):
                server.db_url = db
            else:
                server.db = Path(db)
            started.append(server.start())
            stack.callback(server.stop)
        doc = {
            "name": "fan-out",
            "tasks": {f"t{i}": {"command": "true"} for i in range(args.tasks)},
        }
        answer = requests.post(f"{started[0].url}/api/v1/workflows", json=doc, timeout=120)
        assert answer.status_code == 201, answer.text
        urls = [started[i % servers].url for i in range(args.runners)]
        begin = time.perf_counter()
        with ThreadPoolExecutor(args.runners) as pool:
            parts = list(pool.map(drain, urls, [f"r{i}" for i in range(args.runners)]))
        wall = time.perf_counter() - begin
    done, errors = sum(p[0] for p in parts), sum(p[1] for p in parts)
    assert done == args.tasks, (done, args.tasks)
    print(
        f"{label:12s} servers={servers} runners={args.runners} tasks={done} "
        f"{wall:6.2f} s  {done / wall:7.0f} tasks/s  5xx={errors}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="PostgreSQL with synchronous_commit=off (like SQLite's synchronous=NORMAL)",
    )
    args = parser.parse_args()
    suffix = "?options=-c%20synchronous_commit%3Doff" if args.async_commit else ""
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        run("sqlite", str(tmp / "bench.db"), 1, args, tmp)
        with fresh_database() as url:
            run("postgres", url + suffix, 1, args, tmp)
        with fresh_database() as url:
            run("postgres x2", url + suffix, 2, args, tmp)


if __name__ == "__main__":
    main()
