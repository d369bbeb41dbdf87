"""The prober's own process: health and an authenticated call every 50 ms until stdin closes.

A process of its own, so that what it measures is the server's answer time,
not the attacking test's share of its interpreter lock. It prints one JSON
line: the probes made, the slowest, and any failure.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def probe(port: int, token: str, stop: threading.Event) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    calls = [("/api/v1/health", {}), ("/api/v1/workflows?limit=1", auth)]
    slowest, probes, failures = 0.0, 0, []
    while not stop.wait(0.05):
        for path, headers in calls:
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except OSError as ex:
                failures.append(f"{path}: {ex}")
                continue
            finally:
                conn.close()
            slowest = max(slowest, time.monotonic() - started)
            probes += 1
            if resp.status != 200:
                failures.append(f"{path}: {resp.status}")
    return {"probes": probes, "slowest": slowest, "failures": failures}


def main() -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(json.dumps(probe(int(sys.argv[1]), sys.argv[2], stop)), flush=True)


if __name__ == "__main__":
    main()
