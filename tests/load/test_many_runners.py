"""Three hundred connected runners: every task runs exactly once.

The runners speak the claim/result protocol directly (``bench/swarm.py``: one
asyncio loop, one keep-alive connection each, every attempt reported completed
at once), so a few hundred cost this process little while the server holds as
many long polls. The workflow mixes what the claim desk must get right: a wide
fan-out that wakes many waiters at once, a chain that wakes one at a time, and
labelled tasks only some runners may take while the others keep waiting. It
runs on one server over SQLite and on two servers sharing PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import requests

from bench import swarm
from tests.helpers import LiveServer

pytestmark = pytest.mark.slow

RUNNERS = 300
GPU_RUNNERS = 30
FAN_OUT = 600
CHAIN = 60
GPU_TASKS = 90
DEADLINE = 90.0


def _workflow() -> dict:
    tasks: dict[str, dict] = {f"f{i}": {"command": "true"} for i in range(FAN_OUT)}
    for i in range(CHAIN):
        tasks[f"c{i}"] = {"command": "true", **({"depends_on": [f"c{i - 1}"]} if i else {})}
    for i in range(GPU_TASKS):
        tasks[f"g{i}"] = {"command": "true", "labels": ["gpu"]}
    return {"name": "many-runners", "tasks": tasks}


async def _run_all(servers: list[LiveServer]) -> tuple[dict, swarm.Stats]:
    """Runners split evenly between ``servers``; submit to the first; poll it to the end."""
    stats = swarm.Stats()
    share = len(servers)
    groups = [((RUNNERS - GPU_RUNNERS) // share, ["cpu"]), (GPU_RUNNERS // share, ["gpu"])]
    tasks, links = [], []
    for n, server in enumerate(servers):
        started = swarm.start("127.0.0.1", server.port, groups, stats, prefix=f"s{n}")
        tasks += started[0]
        links += started[1]
    url = servers[0].url
    try:
        deadline = time.monotonic() + DEADLINE
        while len(stats.polling) < RUNNERS:  # every runner waits before the submit
            assert time.monotonic() < deadline, f"only {len(stats.polling)} runners connected"
            await asyncio.sleep(0.05)
        posted = await asyncio.to_thread(
            requests.post, f"{url}/api/v1/workflows", json=_workflow(), timeout=60
        )
        assert posted.status_code == 201, posted.text
        wid = posted.json()["id"]
        while True:
            answer = await asyncio.to_thread(
                requests.get, f"{url}/api/v1/workflows/{wid}", timeout=30
            )
            workflow = answer.json()
            if workflow["state"] != "running":
                return workflow, stats
            assert time.monotonic() < deadline, f"not done in {DEADLINE} s: {workflow['counts']}"
            await asyncio.sleep(0.2)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            link.close()


#: Who ran each attempt of a labelled task, and how many attempts and distinct tasks there are.
ATTEMPTS = "SELECT count(*), count(DISTINCT task_id) FROM attempt"
LABELLED_RUNNERS = (
    "SELECT DISTINCT a.runner FROM attempt a JOIN task t ON t.id = a.task_id "
    "WHERE t.labels IS NOT NULL"
)


@pytest.fixture(params=["sqlite", "postgres-two-servers"])
def store_and_servers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Callable[[str], list[tuple]], list[LiveServer]]]:
    """One server on a SQLite file, or two sharing one PostgreSQL database; a query function."""
    started: list[LiveServer] = []
    if request.param == "sqlite":
        db = tmp_path / "stq.db"
        plan = [LiveServer(db=db)]

        def query(sql: str) -> list[tuple]:
            with closing(sqlite3.connect(db)) as conn:
                return conn.execute(sql).fetchall()

    else:
        import psycopg

        url = request.getfixturevalue("pg_url")
        plan = [LiveServer(db=tmp_path / f"s{n}.db", db_url=url, workers=2) for n in (1, 2)]

        def query(sql: str) -> list[tuple]:
            with psycopg.connect(url) as conn:
                return conn.execute(sql).fetchall()

    try:
        for server in plan:
            started.append(server.start())
        yield query, started
    finally:
        for server in started:
            server.stop()


def test_three_hundred_runners_run_every_task_exactly_once(
    store_and_servers: tuple[Callable[[str], list[tuple]], list[LiveServer]],
) -> None:
    query, servers = store_and_servers
    # A loop of its own, in a thread: another test's (the browser's) may be running in this one.
    with ThreadPoolExecutor(1) as thread:
        workflow, stats = thread.submit(asyncio.run, _run_all(servers)).result()
    total = FAN_OUT + CHAIN + GPU_TASKS
    assert workflow["state"] == "completed", workflow["counts"]
    assert all(t["attempts_used"] == 1 for t in workflow["tasks"])
    assert stats.reported == total and stats.errors == 0
    # One attempt per task: none claimed twice, none claimed for nobody.
    assert query(ATTEMPTS) == [(total, total)]
    gpu_runners = {runner for (runner,) in query(LABELLED_RUNNERS)}
    assert gpu_runners and all("-1-" in name for name in gpu_runners)  # group 1: the gpu runners
