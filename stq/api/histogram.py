"""``Histogram``: a thread-safe cumulative histogram of seconds, as ``/metrics`` shows it.

Kept in memory per process (see ``stq.api.health``): the claim latency each
worker process measures.
"""

from __future__ import annotations

import threading

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Histogram:
    """A thread-safe cumulative histogram of seconds."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.count += 1
            self.total += seconds
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    self.counts[i] += 1

    def lines(self, name: str) -> list[str]:
        """The Prometheus text lines of the histogram called ``name``."""
        with self._lock:
            pairs = zip(self.buckets, self.counts, strict=True)
            out = [f'{name}_bucket{{le="{b}"}} {c}' for b, c in pairs]
            out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
            out.append(f"{name}_sum {self.total:.6f}")
            out.append(f"{name}_count {self.count}")
        return out
