"""Claim + result cost per trivial task on ONE gunicorn process.

Starts ``gunicorn stq.api:app -w 1`` (``stq server``'s worker class) on a fresh SQLite file with an
access log that records each request's server time (``%(D)s``, microseconds),
submits N trivial tasks, then one client claims and completes them one by one.
Prints the server time per task (claim + result, from the access log), the
client-side requests/s, and the same with the ``next`` extension (one request
per task).

    .venv/bin/python bench/bench_api.py [--tasks 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import LiveServer  # noqa: E402


class TimedServer(LiveServer):
    """A LiveServer whose gunicorn writes ``PATH MICROSECONDS`` per request."""

    access_log: Path | None = None

    def start(self) -> TimedServer:
        self.access_log = self.db.with_suffix(".access")
        self.extra_args = [
            "--access-logfile", str(self.access_log), "--access-logformat", "%(U)s %(D)s",
        ]  # fmt: skip
        super().start()
        return self

    def server_times(self) -> dict[str, list[float]]:
        """Seconds per request, by kind (claim / result)."""
        times: dict[str, list[float]] = {"claim": [], "result": []}
        assert self.access_log is not None
        for line in self.access_log.read_text().splitlines():
            path, _, micros = line.rpartition(" ")
            kind = "claim" if path.endswith("/claim") else path.rsplit("/", 1)[-1]
            if kind in times:
                times[kind].append(int(micros) / 1e6)
        return times


def submit(url: str, n: int) -> None:
    doc = {"name": "bench", "tasks": {f"t{i}": {"command": "true"} for i in range(n)}}
    assert requests.post(f"{url}/api/v1/workflows", json=doc, timeout=120).status_code == 201


def plain(url: str, session: requests.Session) -> int:
    done = 0
    while True:
        claim = session.post(f"{url}/api/v1/attempts/claim", json={"runner": "b"}, timeout=30)
        if claim.status_code == 204:
            return done
        aid = claim.json()["attempt_id"]
        session.post(f"{url}/api/v1/attempts/{aid}/result", json={"status": "completed"})
        done += 1


def chained(url: str, session: requests.Session) -> int:
    claim = session.post(f"{url}/api/v1/attempts/claim", json={"runner": "b"}, timeout=30)
    nxt = claim.json() if claim.status_code == 200 else None
    done = 0
    while nxt:
        body = {"status": "completed", "next": {"runner": "b"}}
        answer = session.post(f"{url}/api/v1/attempts/{nxt['attempt_id']}/result", json=body)
        nxt = answer.json()["next"]
        done += 1
    return done


def run(mode: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = TimedServer(db=Path(tmp) / "bench.db", workers=1).start()
        try:
            submit(server.url, n)
            session = requests.Session()
            started = time.perf_counter()
            done = (plain if mode == "plain" else chained)(server.url, session)
            wall = time.perf_counter() - started
            time.sleep(0.5)  # let gunicorn flush its access log
            times = server.server_times()
        finally:
            server.stop()
    assert done == n, (done, n)
    claim, result = times["claim"], times["result"]
    per_task = (sum(claim) + sum(result)) / n
    requests_made = len(claim) + len(result)
    print(
        f"{mode:7s} tasks={n} server time/task={per_task * 1000:.2f} ms "
        f"(claim median {statistics.median(claim or [0]) * 1000:.2f} ms, "
        f"result median {statistics.median(result) * 1000:.2f} ms) "
        f"client: {n / wall:.0f} tasks/s, {requests_made / wall:.0f} requests/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    for mode in ("plain", "next"):
        run(mode, args.tasks)


if __name__ == "__main__":
    main()
