"""One attempt's command as a child process: start it, kill its group, keep its output tail.

The command runs in its own session (so its own process group): a timeout or
a cancel kills the whole group, children such as a ``sleep`` it spawned
included. stdout and stderr go together into one temporary file rather than a
pipe, so the runner's memory stays flat however much the command prints, and
only the last ``MAX_OUTPUT_BYTES`` are read back for the result.

A shell command run in the runner's own working directory (the common case)
is started with ``os.posix_spawn`` rather than ``subprocess.Popen``, for about
a third of Popen's CPU in the runner (0.06 against 0.17 ms per task measured
here), which counts when tasks take milliseconds. The child is the same:
``/bin/sh -c``, a new session, default handling of the signals Python ignores,
stdin from /dev/null, stdout and stderr into the output file, and no other
descriptor (Python opens every one non-inheritable, and those this process
was given are made so before the first spawn).
Python 3.11's ``posix_spawn`` cannot change directory, and its program lookup
would use the runner's ``PATH`` rather than the task's, so a ``cwd`` or an argv
command goes through Popen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Protocol

from stq.settings import MAX_OUTPUT_BYTES
from stq.utf8 import char_start

#: Seconds between SIGTERM and SIGKILL when an attempt is stopped.
KILL_GRACE = 10.0


class CannotStart(Exception):
    """The command could not be started: missing program, bad cwd, no permission."""


def resolve_cwd(cwd: str | None, base: Path) -> Path:
    """The task's ``cwd`` relative to the runner's working directory (docs/cli.md)."""
    return base if not cwd else base / cwd


class Child(Protocol):
    """A started command: its pid (also its process group) and a blocking wait."""

    pid: int

    def wait(self) -> int: ...


class _Spawned:
    """A child started by ``posix_spawn``, waited for as Popen would."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)  # a signal handler's exception leaves it unreaped
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


_SHELL = "/bin/sh"
#: Signals Python ignores that a command must get back at their defaults (Popen's
#: ``restore_signals``): with SIGPIPE ignored, ``yes | head -1`` would complain.
_RESTORED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)
#: Where this process's open descriptors are listed (Linux); elsewhere every command uses Popen.
_OWN_FDS = "/proc/self/fd"
_CAN_SPAWN = os.path.isdir(_OWN_FDS)
_inherited_made_private = False


def start(command: str | list[str], env: Mapping[str, str], cwd: Path, out: IO[bytes]) -> Child:
    """Start ``command`` in a new process group writing into ``out``; raise CannotStart."""
    if not cwd.is_dir():
        raise CannotStart(f"cannot start: working directory {str(cwd)!r} does not exist")
    argv: list[str] = [_SHELL, "-c", command] if isinstance(command, str) else list(command)
    try:
        if isinstance(command, str) and _CAN_SPAWN and os.path.samefile(cwd, "."):
            return _spawn_here(argv, env, out)
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
    except ValueError as ex:  # a NUL in the command, an argument or the environment
        raise CannotStart(f"cannot start: {ex} in the command or its environment") from ex


def _spawn_here(argv: list[str], env: Mapping[str, str], out: IO[bytes]) -> _Spawned:
    """``argv[0]`` is a path: run it here, in a new session, as ``start`` describes."""
    _make_inherited_private()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, out.fileno(), 2),
            ],
            setsid=True,
            setsigdef=_RESTORED_SIGNALS,
        )
    finally:
        os.close(devnull)
    return _Spawned(pid)


def _make_inherited_private() -> None:
    """Once: descriptors this process inherited are not passed on (Popen's ``close_fds``)."""
    global _inherited_made_private
    if _inherited_made_private:
        return
    for name in os.listdir(_OWN_FDS):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own descriptor, closed since
    _inherited_made_private = True


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


def read_from(out: IO[bytes], offset: int, limit: int = MAX_OUTPUT_BYTES) -> tuple[str, int]:
    """What was written to ``out`` from byte ``offset`` on (at most its last ``limit``
    bytes), decoded leniently, and the byte it starts at."""
    out.flush()
    size = out.seek(0, os.SEEK_END)
    start = max(offset, size - limit)
    out.seek(start)
    data = out.read(size - start)
    if start > offset:  # the cut may fall inside a multi-byte character
        skip = char_start(data)
        data, start = data[skip:], start + skip
    return data.decode("utf-8", errors="replace"), start


def read_tail(out: IO[bytes], limit: int = MAX_OUTPUT_BYTES) -> str:
    """The last ``limit`` bytes written to ``out``, decoded leniently."""
    return read_from(out, 0, limit)[0]


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
