"""The SQLite WAL stays small while several processes write back to back.

Left to SQLite's own checkpoints, writers that follow one another without a
gap (several runners' results) keep the WAL from ever being rewound: it only
grows, and every commit runs a checkpoint. The store checkpoints itself
(``stq.store.sqlite``); here four processes report and claim as fast as they
can, and the WAL file must stay near the size of a few checkpoints' worth.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from stq.model import AttemptStatus, Report, TaskSpec, WorkflowSpec
from stq.store import open_store

PROCESSES = 4
TASKS = 4000
DONE = Report(AttemptStatus.COMPLETED, exit_code=0, output="")


def _work_through(path: str, runner: str) -> int:
    """Claim, then report each attempt and take the next in one transaction, until none."""
    store = open_store(path)
    done = 0
    try:
        claim = store.claim_attempt(runner, [])
        while claim is not None:
            _, claim = store.report_and_claim(claim.attempt_id, DONE, runner, [])
            done += 1
    finally:
        store.close()
    return done


def test_wal_is_rewound_while_processes_write_back_to_back(tmp_path: Path) -> None:
    path = str(tmp_path / "stq.db")
    store = open_store(path)
    tasks = tuple(TaskSpec(f"t{i}", "true") for i in range(TASKS))
    store.submit_workflow(WorkflowSpec("busy", tasks))
    wal = Path(path + "-wal")
    with sqlite3.connect(path) as probe:  # the submit's own pages out of the way
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert wal.stat().st_size == 0

    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(PROCESSES) as pool:
        done = pool.starmap(_work_through, [(path, f"r{i}") for i in range(PROCESSES)])

    assert sum(done) == TASKS
    assert all(count > 0 for count in done), done  # they did write side by side
    # Rewound now and then, the WAL holds about CHECKPOINT_EVERY writes per
    # process (~4 MiB here); never rewound, it holds all of them (~30 MiB).
    assert wal.stat().st_size < 12 * 2**20, wal.stat().st_size
    store.close()
