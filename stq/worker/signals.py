"""Graceful stop: the first SIGTERM/SIGINT drains, the second one is the hard stop.

Supervisors send SIGTERM to stop a service; killing a half-done command at
that moment would waste its work, so the first signal only stops claiming and
lets the current attempt finish. A second signal (an impatient Ctrl-C) kills
the command, which is then reported failed, and the runner exits.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def on_stop(first: Callable[[], None], second: Callable[[], None]) -> Iterator[None]:
    """Call ``first`` on the first stop signal, ``second`` on any later one."""
    count = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        (first if count == 1 else second)()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
