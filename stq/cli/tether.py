"""Processes ``stq run`` starts die with it, even when it is killed with SIGKILL.

``stq run`` stops its runners and its server on every exit it sees, but SIGKILL
(or the OOM killer) gives it none: its runners would then retry a dead server
for ever and its gunicorn would hold its port. So each child holds the read
end of a pipe whose only write end ``stq run`` keeps, and a thread blocks
reading it. Nothing is ever written: the read returns, at end of file, when
the write end closes, which the kernel does when ``stq run`` exits however it
exits. The child then stops as ``stq run``'s own clean-up would stop it: two
SIGTERMs (a runner kills its command's process group and reports; gunicorn
stops), and ``STOP_GRACE`` seconds later SIGKILL to its process group (a
runner still retrying its report to the server that went with ``stq run``,
gunicorn's workers). A pipe works wherever ``stq run`` does; Linux's
``PR_SET_PDEATHSIG`` would only cover Linux, and fires when the thread that
started the child ends rather than the process.

A child is started as ``python -m stq.cli.tether MODULE ARGS...`` (``tethered``),
which watches the pipe named by ``FD_VARIABLE`` and runs ``python -m MODULE
ARGS...`` in the same process.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Sequence

#: The environment variable that tells a child which descriptor is its end of the pipe.
FD_VARIABLE = "STQ_TETHER_FD"
#: Seconds between the SIGTERMs and the SIGKILL: a runner kills its command's
#: process group within its own 5 s grace (``stq.worker.process.KILL_GRACE``).
STOP_GRACE = 8.0

log = logging.getLogger("stq.run")


class Tether:
    """The parent's side: one pipe, its read end handed to every child started with it."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # neither is inherited unless passed

    @property
    def pass_fds(self) -> tuple[int]:
        """For ``subprocess.Popen(pass_fds=...)``: the read end, which the child watches."""
        return (self._read,)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus the variable that names the read end to the child."""
        return {**env, FD_VARIABLE: str(self._read)}

    def close(self) -> None:
        """Close both ends: children still running see end of file and stop."""
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def tethered(argv: Sequence[str]) -> list[str]:
    """``[python, -m, MODULE, ...]`` as a child that watches its tether."""
    python, flag, *rest = argv
    if flag != "-m":
        raise ValueError(f"expected python -m MODULE ...: {list(argv)!r}")
    return [python, "-m", "stq.cli.tether", *rest]


def watch_parent() -> bool:
    """Start the thread that stops this process when the tether's write end closes.

    Takes the descriptor from the environment (so the commands a runner
    starts do not see it) and keeps it from being inherited. False when this
    process was not started with a tether.
    """
    text = os.environ.pop(FD_VARIABLE, None)
    if not text:
        return False
    fd = int(text)
    os.set_inheritable(fd, False)
    threading.Thread(target=_wait_for_parent, args=(fd,), name="stq-tether", daemon=True).start()
    return True


def _wait_for_parent(fd: int) -> None:
    while os.read(fd, 1):  # nothing is written: this returns b"" when the parent is gone
        pass
    log.warning("stq run is gone: stopping")
    for _ in range(2):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the first handler runs before the second signal arrives
    time.sleep(STOP_GRACE)
    _kill_own_group()


def _kill_own_group() -> None:
    """SIGKILL this process's group if it leads it (as ``stq run`` starts it), else itself."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: Sequence[str]) -> None:
    """``python -m stq.cli.tether MODULE ARGS...``: watch the tether, then run MODULE as main."""
    if not argv:
        raise SystemExit("usage: python -m stq.cli.tether MODULE [ARGS...]")
    watch_parent()
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
