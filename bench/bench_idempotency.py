"""What an ``Idempotency-Key`` costs a submit, in store time, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_idempotency.py [--submits 300] [--pg postgresql://...]

Medians over ``--submits`` submits of a 10-task workflow: without a key, with a
fresh key each (the key is taken, bound, and expired keys are looked for: four
statements more, each a round trip on PostgreSQL), and a repeat of one key
(answered from the stored workflow, nothing written). ``--pg`` names a database
with STQ's schema (or an empty one: the schema is created); without it only
SQLite is measured, on a temporary file.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from stq.model import TaskSpec, WorkflowSpec
from stq.store import open_store
from stq.store.base import Idempotency

SPEC = WorkflowSpec("bench", tuple(TaskSpec(f"t{i}", "true") for i in range(10)))


def median_ms(submit: Callable[[], object], times: int) -> float:
    took = []
    for _ in range(times):
        start = time.perf_counter()
        submit()
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1000


def measure(url: str, times: int) -> dict[str, float]:
    store = open_store(url)
    try:
        repeated = Idempotency("bench-repeat", "0" * 64)
        store.submit_workflow(SPEC, repeated)
        return {
            "no key": median_ms(lambda: store.submit_workflow(SPEC), times),
            "fresh key": median_ms(
                lambda: store.submit_workflow(SPEC, Idempotency(uuid.uuid4().hex, "0" * 64)),
                times,
            ),
            "repeat": median_ms(lambda: store.submit_workflow(SPEC, repeated), times),
        }
    finally:
        store.close()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--pg", metavar="URL", help="a PostgreSQL database to measure too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = {"sqlite": str(Path(folder) / "bench.db")}
        if args.pg:
            stores["postgresql"] = args.pg
        for name, url in stores.items():
            found = measure(url, args.submits)
            print(f"{name:<10} " + "  ".join(f"{k}: {v:.2f} ms" for k, v in found.items()))


if __name__ == "__main__":
    main()
