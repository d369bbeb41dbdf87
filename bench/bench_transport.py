"""Client CPU per round trip of the client's HTTP transport, against a real local server.

    .venv/bin/python bench/bench_transport.py [--requests 2000] [--rounds 3]

Starts ``stq server`` (one worker, SQLite in a temporary directory), and for
each client below, in alternating rounds, submits a workflow of ``--requests``
``true`` tasks and claims every one of them on one keep-alive connection:
a ~200-byte JSON body out, a ~300-byte JSON claim back, as a runner's hot path
does. It prints the client process's CPU (``time.process_time``) and the wall
time per request, medians over the rounds. The server's CPU is not counted.

Clients: ``stq.worker.http_lite`` (``httptools`` on a socket, what ``stq.worker.client`` uses);
``http.client`` used leanly (one ``HTTPConnection``, the body passed to
``request()`` so head and body go out in one write, the answer read with a
bounded ``read``); and a ``requests.Session`` (``trust_env`` off, no
redirects, the body streamed with a bounded ``iter_content``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench import procs
from stq.worker import http_lite

Call = Callable[[dict], bytes]
PATH = "/api/v1/attempts/claim"
#: A claim's body padded to ~200 bytes, as a runner with a long name and labels sends.
BODY = {
    "runner": "build-host-0042.example.internal:runner-7",
    "labels": ["linux", "x86_64", "docker", "gpu-none", "region-eu-west-1", "pool-default"],
    "wait": 0,
}


def transport(url: str) -> Call:
    conn = http_lite.Connection(url, {}, connect_timeout=5)

    def call(body: dict) -> bytes:
        return conn.request("POST", PATH, body).content

    return call


def lean_http_client(url: str) -> Call:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Accept": "application/json", "Content-Type": "application/json"}

    def call(body: dict) -> bytes:
        conn.request("POST", PATH, json.dumps(body).encode(), headers)
        return conn.getresponse().read(http_lite.MAX_ANSWER + 1)

    return call


def requests_session(url: str) -> Call:
    session = requests.Session()
    session.trust_env = False

    def call(body: dict) -> bytes:
        answer = session.post(
            url + PATH, json=body, allow_redirects=False, timeout=(5, 30), stream=True
        )
        return b"".join(answer.iter_content(64 * 1024))

    return call


CLIENTS = {
    "stq.worker.http_lite (httptools)": transport,
    "http.client, lean": lean_http_client,
    "requests.Session": requests_session,
}


def submit(url: str, tasks: int) -> None:
    doc = {"name": "bench", "tasks": {f"t{i}": {"command": "true"} for i in range(tasks)}}
    answer = requests.post(url + "/api/v1/workflows", json=doc, timeout=300)
    if answer.status_code != 201:
        raise SystemExit(f"benchmark: submit answered {answer.status_code}")


def one_round(make: Callable[[str], Call], url: str, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per request for ``count`` claims that each find a task."""
    call = make(url)
    call(BODY)  # connect and warm up before the clock starts
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count - 1):
        answer = call(BODY)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not answer.startswith(b'{"attempt_id"'):
        raise SystemExit(f"benchmark: a claim answered {answer[:100]!r}")
    return cpu / (count - 1), wall / (count - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    with tempfile.TemporaryDirectory() as tmp, procs.server(Path(tmp) / "t.db", 1) as (url, _):
        for _ in range(args.rounds):
            for name, make in CLIENTS.items():
                submit(url, args.requests)
                results[name].append(one_round(make, url, args.requests))
    python = sys.version.split()[0]
    print(f"{args.requests} claims per round, {args.rounds} rounds, medians, Python {python}")
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs) * 1e6
        wall = statistics.median(r[1] for r in runs) * 1e6
        print(f"{name:26} CPU {cpu:6.0f} us/request   wall {wall:6.0f} us/request")


if __name__ == "__main__":
    main()
