"""A real ``gunicorn stq.api:app -w 4`` on a free loopback port, with ``stq server``'s
worker options and with plain ``gthread``: concurrent claimers, exclusive holds, kill -9
recovery and the long-poll wake-up time."""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from stq.api.launch import WORKER_CLASS
from tests.helpers import LiveServer, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(params=[WORKER_CLASS, "gthread"], ids=["stq-server-worker", "gthread"])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """Both ways to serve the API: what ``stq server`` runs, and gunicorn's own gthread."""
    server = LiveServer(db=tmp_path / "stq.db", worker_class=request.param).start()
    try:
        yield server
    finally:
        server.stop()


def many(n: int, **task: Any) -> dict[str, Any]:
    return {"name": "many", "tasks": {f"t{i}": {"command": "true", **task} for i in range(n)}}


def submit(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    result = requests.post(f"{url}/api/v1/workflows", json=doc, timeout=30)
    assert result.status_code == 201, result.text
    return result.json()


class Runner:
    """One claimer thread's loop: claim, then call ``work``, then report; stop when idle."""

    def __init__(self, url: Callable[[], str], name: str, work: Callable[[dict], str]):
        self.url, self.name, self.work = url, name, work
        self.session = requests.Session()
        self.statuses: Counter[int] = Counter()

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        result = self.session.post(f"{self.url()}{path}", json=body, timeout=30)
        self.statuses[result.status_code] += 1
        return result

    def run(self, done: Callable[[], bool]) -> None:
        while not done():
            result = self.post("/api/v1/attempts/claim", {"runner": self.name, "wait": 0.2})
            if result.status_code != 200:
                continue
            claim = result.json()
            status = self.work(claim)
            self.post(f"/api/v1/attempts/{claim['attempt_id']}/result", {"status": status})


def counts(url: str, wid: str) -> dict[str, int]:
    return requests.get(f"{url}/api/v1/workflows/{wid}", timeout=30).json()["counts"]


def run_runners(runners: list[Runner], done: Callable[[], bool]) -> None:
    with ThreadPoolExecutor(len(runners)) as pool:
        for future in [pool.submit(r.run, done) for r in runners]:
            future.result(timeout=120)


def test_eight_claimers_complete_1000_tasks_exactly_once(live_server: LiveServer) -> None:
    wid = submit(live_server.url, many(1000))["id"]
    claimed: list[str] = []

    def work(claim: dict) -> str:
        claimed.append(claim["task_id"])  # list.append is atomic under the GIL
        return "completed"

    runners = [Runner(lambda: live_server.url, f"r{i}", work) for i in range(8)]
    run_runners(runners, lambda: len(claimed) >= 1000)
    assert len(claimed) == 1000 and len(set(claimed)) == 1000
    assert counts(live_server.url, wid)["completed"] == 1000
    statuses = sum((r.statuses for r in runners), Counter())
    assert not [s for s in statuses if s >= 500], statuses


def test_twenty_threads_never_hold_the_same_task(live_server: LiveServer) -> None:
    wid = submit(live_server.url, many(50, max_attempts=3))["id"]
    held: set[str] = set()
    overlaps: list[str] = []
    finished: list[str] = []
    lock = threading.Lock()
    turn = Counter[str]()

    def work(claim: dict) -> str:
        task = claim["task_id"]
        with lock:
            if task in held:
                overlaps.append(task)
            held.add(task)
            turn[task] += 1
        time.sleep(0.002)  # holding the task while "running" it
        with lock:
            held.discard(task)
            status = "failed" if turn[task] == 1 and zlib.crc32(task.encode()) % 2 else "completed"
            if status == "completed":
                finished.append(task)
        return status

    runners = [Runner(lambda: live_server.url, f"r{i}", work) for i in range(20)]
    run_runners(runners, lambda: len(finished) >= 50)
    assert overlaps == []
    statuses = sum((r.statuses for r in runners), Counter())
    assert not [s for s in statuses if s >= 500], statuses
    assert sorted(finished) == sorted(set(finished)) and len(finished) == 50
    assert counts(live_server.url, wid)["completed"] == 50


def test_kill_9_mid_run_loses_nothing(tmp_path: Path) -> None:
    env = {"STQ_HEARTBEAT_TIMEOUT": "1.5"}  # attempts cut off by the kill come back quickly
    server = LiveServer(db=tmp_path / "stq.db", env=env).start()
    current = {"url": server.url}
    try:
        wid = submit(server.url, many(300, max_attempts=5))["id"]
        task_of: dict[str, str] = {}
        acked: set[str] = set()

        def work(claim: dict) -> str:
            task_of[claim["attempt_id"]] = claim["task_id"]
            return "completed"

        runner = Runner(lambda: current["url"], "r", work)
        plain_post = runner.post

        def post(path: str, body: dict[str, Any]) -> requests.Response:
            result = plain_post(path, body)
            if path.endswith("/result") and result.ok:
                acked.add(task_of[path.split("/")[4]])
            return result

        runner.post = post  # type: ignore[method-assign]
        done = threading.Event()
        thread = threading.Thread(target=_tolerant, args=(runner, done), daemon=True)
        thread.start()
        wait_until(lambda: len(acked) >= 100, timeout=60, what="100 results")
        server.kill()
        acked_at_kill = set(acked)
        server = LiveServer(db=tmp_path / "stq.db", env=env).start()
        current["url"] = server.url
        done_ids = {t["id"] for t in completed_tasks(server.url, wid)}
        assert acked_at_kill <= done_ids  # every acknowledged completion survived
        assert sum(counts(server.url, wid).values()) == 300  # nothing vanished
        wait_until(lambda: counts(server.url, wid)["completed"] == 300, timeout=60, what="all")
        done.set()
        thread.join(10)
        final = requests.get(f"{server.url}/api/v1/workflows/{wid}", timeout=30).json()
        assert final["state"] == "completed" and len(final["tasks"]) == 300
    finally:
        server.stop()


def completed_tasks(url: str, wid: str) -> list[dict[str, Any]]:
    params = {"workflow": wid, "state": "completed"}
    return requests.get(f"{url}/api/v1/tasks", params=params, timeout=30).json()["tasks"]


def _tolerant(runner: Runner, done: threading.Event) -> None:
    """Keep a runner going across a dead server: connection errors just retry."""
    while not done.is_set():
        try:
            runner.run(done.is_set)
        except requests.RequestException:
            time.sleep(0.05)


def test_long_poll_wakes_soon_after_work_appears(live_server: LiveServer) -> None:
    answers: list[tuple[float, int]] = []

    def claim() -> None:
        result = requests.post(
            f"{live_server.url}/api/v1/attempts/claim",
            json={"runner": "r", "wait": 10},
            timeout=30,
        )
        answers.append((time.monotonic(), result.status_code))

    thread = threading.Thread(target=claim)
    thread.start()
    time.sleep(0.3)  # let the claim start waiting (nothing observable to poll for)
    submit(live_server.url, many(1))
    submitted = time.monotonic()
    thread.join(15)
    woke_at, status = answers[0]
    latency = woke_at - submitted
    print(f"long-poll wake-up latency: {latency * 1000:.1f} ms")
    assert status == 200
    assert latency < 0.5


def test_a_20_mib_body_is_413_declared_or_chunked(live_server: LiveServer) -> None:
    url = f"{live_server.url}/api/v1/workflows"

    def chunks() -> Iterator[bytes]:
        for _ in range(320):  # 20 MiB, sent chunked: no Content-Length
            yield b" " * 65536

    for body in (b" " * (20 * 1024 * 1024), chunks()):
        result = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert result.status_code == 413
        assert result.json()["error"]["code"] == "payload_too_large"
