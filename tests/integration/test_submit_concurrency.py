"""One ``Idempotency-Key`` posted many times at once to real gunicorn servers: one workflow.

Every request goes out at the same moment (a barrier) to a server with several
worker processes: on SQLite, on PostgreSQL, and to two servers sharing one
PostgreSQL database. Exactly one answer is 201, every other one is 200 with the
same workflow, and the store holds that one workflow.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import LiveServer

#: Requests racing for one key, per round.
RACERS = 12
ROUNDS = 3
#: Tasks per workflow: enough that storing one takes a while, so the racers overlap.
TASKS = 400


def _race(urls: list[str], key: str) -> list[tuple[int, str]]:
    """Post one body with ``key`` from ``RACERS`` threads at once, spread over ``urls``."""
    body = json.dumps(
        {"name": "race", "tasks": {f"t{i}": {"command": "true"} for i in range(TASKS)}}
    )
    start = threading.Barrier(RACERS)
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}

    def post(number: int) -> tuple[int, str]:
        with requests.Session() as session:  # a connection of its own, opened before the race
            url = urls[number % len(urls)]
            session.get(f"{url}/api/v1/health", timeout=10)
            start.wait(timeout=30)
            answer = session.post(
                f"{url}/api/v1/workflows", data=body, headers=headers, timeout=60
            )
        return answer.status_code, answer.json().get("id", answer.text)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(post, range(RACERS)))


def _race_rounds(servers: list[LiveServer], prefix: str) -> list[str]:
    """``ROUNDS`` races, a new key each; the one workflow id each race answered with."""
    created = []
    for round_number in range(ROUNDS):
        answers = _race([s.url for s in servers], f"{prefix}-{round_number}")
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] * (RACERS - 1) + [201], answers
        ids = {wid for _, wid in answers}
        assert len(ids) == 1, answers
        created += ids
    return created


def _assert_stored(servers: list[LiveServer], created: list[str]) -> None:
    """Every server sees the same store: exactly the workflows the races created."""
    for server in servers:
        listed = requests.get(f"{server.url}/api/v1/workflows", timeout=10).json()["workflows"]
        assert sorted(w["id"] for w in listed) == sorted(created)
        assert all(w["counts"]["todo"] == TASKS for w in listed)


def _start(tmp_path: Path, name: str, db_url: str | None = None) -> LiveServer:
    return LiveServer(db=tmp_path / f"{name}.db", workers=3, db_url=db_url).start()


def test_one_key_at_once_on_sqlite_gives_one_workflow(tmp_path: Path) -> None:
    server = _start(tmp_path, "sqlite")
    try:
        _assert_stored([server], _race_rounds([server], "sqlite"))
    finally:
        server.stop()


@pytest.mark.postgres
def test_one_key_at_once_on_two_servers_sharing_postgres_gives_one_workflow(
    tmp_path: Path, pg_url: str
) -> None:
    servers = [_start(tmp_path, "pg-a", pg_url)]
    try:
        created = _race_rounds(servers, "one-server")  # several worker processes
        servers.append(_start(tmp_path, "pg-b", pg_url))
        created += _race_rounds(servers, "two-servers")
        _assert_stored(servers, created)
    finally:
        for server in servers:
            server.stop()
