"""The prober's own process: health and an authenticated call every 50 ms until stdin closes.

A process of its own, so that what it measures is the server's answer time,
not the attacking test's share of its interpreter lock. It prints one JSON
line: the probes made, the slowest (and which, when), the blips, and any
failure.

A stall is what an attack causes: while it lasts, every call is slow. One
slow answer followed at once by a quick one is the machine scheduling
something else for a moment (two shared cores, a whole test suite around),
so a call over the limit is asked again at once and the quicker of the two
counts; the blips are counted apart, and the caller bounds them too.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def ask(port: int, path: str, headers: dict[str, str]) -> tuple[float, int]:
    """Seconds one call took on a new connection, and its status."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    return time.monotonic() - started, resp.status


def probe(port: int, token: str, limit: float, stop: threading.Event) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    calls = [("/api/v1/health", {}), ("/api/v1/workflows?limit=1", auth)]
    slowest, probes, blips, failures = 0.0, 0, 0, []
    slowest_at, began = "", time.monotonic()
    while not stop.wait(0.05):
        for path, headers in calls:
            asked = time.monotonic()
            try:
                took, status = ask(port, path, headers)
                if took >= limit and status == 200:
                    again, status = ask(port, path, headers)
                    blips += again < limit
                    took = min(took, again)
            except OSError as ex:
                failures.append(f"{path}: {ex}")
                continue
            if took > slowest:
                slowest, slowest_at = took, f"{path}, {asked - began:.1f} s in"
            probes += 1
            if status != 200:
                failures.append(f"{path}: {status}")
    return {
        "probes": probes,
        "slowest": slowest,
        "slowest_at": slowest_at,
        "blips": blips,
        "failures": failures,
    }


def main() -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    port, token, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    print(json.dumps(probe(port, token, limit, stop)), flush=True)


if __name__ == "__main__":
    main()
