"""One attempt's command as a child process: start it, kill its group, keep its output tail.

The command runs in its own session (so its own process group): a timeout or
a cancel kills the whole group, children such as a ``sleep`` it spawned
included. stdout and stderr go together into one temporary file rather than a
pipe, so the runner's memory stays flat however much the command prints, and
only the last ``MAX_OUTPUT_BYTES`` are read back for the result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from stq.settings import MAX_OUTPUT_BYTES

#: Seconds between SIGTERM and SIGKILL when an attempt is stopped.
KILL_GRACE = 5.0


class CannotStart(Exception):
    """The command could not be started: missing program, bad cwd, no permission."""


def resolve_cwd(cwd: str | None, base: Path) -> Path:
    """The task's ``cwd`` relative to the runner's working directory (SPEC section 4)."""
    return base if not cwd else base / cwd


def start(
    command: str | list[str], env: Mapping[str, str], cwd: Path, out: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new process group writing into ``out``; raise CannotStart."""
    if not cwd.is_dir():
        raise CannotStart(f"cannot start: working directory {str(cwd)!r} does not exist")
    argv: list[str] = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as ex:
        raise CannotStart(f"cannot start: program {argv[0]!r} not found") from ex
    except PermissionError as ex:
        raise CannotStart(f"cannot start: permission denied running {argv[0]!r}") from ex
    except OSError as ex:
        raise CannotStart(f"cannot start {argv[0]!r}: {ex.strerror or ex}") from ex


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pgid reused by someone else's process: leave it alone
        return False
    return True


def kill_group(pgid: int, exited: threading.Event, grace: float = KILL_GRACE) -> None:
    """SIGTERM the group, give the leader ``grace`` seconds to exit, then SIGKILL the rest."""
    if signal_group(pgid, signal.SIGTERM):
        exited.wait(grace)
        signal_group(pgid, signal.SIGKILL)


def read_tail(out: IO[bytes], limit: int = MAX_OUTPUT_BYTES) -> str:
    """The last ``limit`` bytes written to ``out``, decoded leniently."""
    out.flush()
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - limit))
    data = out.read(limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit and text.startswith("\ufffd"):
        text = text.lstrip("\ufffd")  # the cut fell inside a multi-byte character
    return text


def describe_exit(returncode: int) -> tuple[int, str | None]:
    """A shell-style exit code and, for a signal death, a message naming the signal."""
    if returncode >= 0:
        return returncode, None
    sig = -returncode
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return 128 + sig, f"killed by {name}"
