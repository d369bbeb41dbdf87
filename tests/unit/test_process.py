"""process.py with real subprocesses: process groups, output tail, commands that cannot start."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from stq.worker import process
from tests.helpers import wait_until


@pytest.fixture
def out() -> Iterator[IO[bytes]]:
    with tempfile.TemporaryFile() as f:
        yield f


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(params=["here", "elsewhere"])
def workdir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Where a shell command runs: the runner's own directory (``posix_spawn``) or another
    (``Popen``); both must start the same child."""
    if request.param == "here":
        monkeypatch.chdir(tmp_path)
        return Path(".")
    return tmp_path


SHOW_SETUP = (
    'echo "session=$(cut -d" " -f6 /proc/$$/stat) pid=$$"; '
    "echo stdin=$(readlink /proc/$$/fd/0); "
    "ls /proc/$$/fd > fds; echo fds=$(sort -n fds | tr '\\n' ' '); "
    "echo to-stderr 1>&2; exit 3"
)


def setup_seen(out: IO[bytes], cwd: Path) -> list[str]:
    out.seek(0)
    out.truncate()
    proc = process.start(SHOW_SETUP, os.environ, cwd, out)
    assert proc.wait() == 3
    return process.read_tail(out).splitlines()


def test_a_shell_command_runs_alone_in_its_own_session(out: IO[bytes], workdir: Path) -> None:
    lines = setup_seen(out, workdir)
    session, pid = (part.split("=")[1] for part in lines[0].split())
    assert session == pid  # a new session: a kill of its group reaches everything it starts
    assert lines[1] == "stdin=/dev/null"
    assert lines[3] == "to-stderr"


def test_spawned_and_popened_commands_hold_the_same_descriptors(
    out: IO[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inherited = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(inherited, True)  # as if the runner had been given it by its parent...
    monkeypatch.setattr(process, "_inherited_made_private", False)  # ...before its first spawn
    try:
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path)
        here = setup_seen(out, Path("."))[2]
        elsewhere = setup_seen(out, tmp_path / "elsewhere")[2]
    finally:
        os.close(inherited)
    assert str(inherited) not in here.split("=")[1].split()
    assert here == elsewhere


def test_a_command_gets_default_signal_handling(out: IO[bytes], workdir: Path) -> None:
    """Python ignores SIGPIPE; a command must not: ``yes`` dies quietly when ``head`` is done."""
    proc = process.start("yes | head -n 1", os.environ, workdir, out)
    assert proc.wait() == 0
    assert process.read_tail(out) == "y\n"


def test_a_command_runs_though_the_runners_own_directory_is_gone(
    out: IO[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gone").mkdir()
    (tmp_path / "task").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    proc = process.start("pwd", os.environ, tmp_path / "task", out)
    assert proc.wait() == 0
    assert process.read_tail(out) == f"{tmp_path / 'task'}\n"


def test_a_signal_death_reads_the_same_either_way(out: IO[bytes], workdir: Path) -> None:
    proc = process.start("kill -TERM $$", os.environ, workdir, out)
    assert process.describe_exit(proc.wait()) == (143, "killed by SIGTERM")


def test_shell_string_gets_env_and_cwd(out: IO[bytes], tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    env = {**os.environ, "GREETING": "hello"}
    cwd = process.resolve_cwd("sub", tmp_path)
    proc = process.start('echo "$GREETING from $(pwd)" 1>&2', env, cwd, out)
    assert proc.wait(10) == 0
    assert process.read_tail(out) == f"hello from {tmp_path / 'sub'}\n"


def test_argv_runs_without_a_shell(out: IO[bytes], tmp_path: Path) -> None:
    proc = process.start(["echo", "$HOME", "a b"], os.environ, tmp_path, out)
    assert proc.wait(10) == 0
    assert process.read_tail(out) == "$HOME a b\n"


def test_output_tail_keeps_only_the_last_bytes(out: IO[bytes], tmp_path: Path) -> None:
    script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END"
    proc = process.start(script, os.environ, tmp_path, out)
    assert proc.wait(10) == 0
    tail = process.read_tail(out, limit=1024 * 1024)
    assert len(tail.encode()) == 1024 * 1024
    assert tail.endswith("x\nTHE-END\n")


def test_tail_never_starts_inside_a_character(out: IO[bytes]) -> None:
    out.write("é".encode() * 10)
    assert process.read_tail(out, limit=5) == "éé"


@pytest.mark.parametrize(
    ("command", "cwd", "message"),
    [
        (["no-such-program-stq"], None, "program 'no-such-program-stq' not found"),
        (["true"], "missing-dir", "working directory"),
        (["./not-a-program"], None, "cannot start './not-a-program'"),
    ],
)
def test_cannot_start_is_a_clear_message(
    out: IO[bytes], tmp_path: Path, command: list[str], cwd: str | None, message: str
) -> None:
    (tmp_path / "not-a-program").write_bytes(b"\x00\x01 not an executable")
    (tmp_path / "not-a-program").chmod(0o755)
    with pytest.raises(process.CannotStart, match=message):
        process.start(command, os.environ, process.resolve_cwd(cwd, tmp_path), out)


@pytest.mark.parametrize(
    ("command", "env"),
    [
        ("echo a\x00b", {}),
        (["echo", "a\x00b"], {}),
        ("echo ok", {"E": "a\x00b"}),
        (["echo", "ok"], {"E": "a\x00b"}),
    ],
)
def test_a_nul_byte_cannot_start_rather_than_crash(
    out: IO[bytes], workdir: Path, command: str | list[str], env: dict[str, str]
) -> None:
    """No exec can pass a NUL: the attempt fails as "could not start", the runner lives on."""
    with pytest.raises(process.CannotStart, match="null byte in the command or its environment"):
        process.start(command, {**os.environ, **env}, workdir, out)


def test_kill_group_takes_children_with_it(out: IO[bytes], workdir: Path) -> None:
    proc = process.start("sleep 300 & echo $!; wait", os.environ, workdir, out)
    child = int(wait_until(lambda: process.read_tail(out).strip(), what="child pid"))
    assert alive(child)
    exited = threading.Event()
    started = time.monotonic()
    killer = threading.Thread(target=process.kill_group, args=(proc.pid, exited, 5.0))
    killer.start()
    returncode = proc.wait()
    exited.set()
    killer.join(10)
    assert time.monotonic() - started < 4  # SIGTERM sufficed: no grace period waited out
    assert process.describe_exit(returncode) == (143, "killed by SIGTERM")
    wait_until(lambda: not alive(child), timeout=5, what="the child sleep to go")


def test_sigkill_after_grace_when_sigterm_is_ignored(out: IO[bytes], tmp_path: Path) -> None:
    proc = process.start("trap '' TERM; sleep 300 & echo $!; wait", os.environ, tmp_path, out)
    child = int(wait_until(lambda: process.read_tail(out).strip(), what="child pid"))
    exited = threading.Event()
    killer = threading.Thread(target=process.kill_group, args=(proc.pid, exited, 0.3))
    killer.start()
    returncode = proc.wait(10)
    exited.set()
    killer.join(10)
    assert returncode == -9
    wait_until(lambda: not alive(child), timeout=5, what="the child that ignored SIGTERM")


def test_exit_codes() -> None:
    assert process.describe_exit(0) == (0, None)
    assert process.describe_exit(3) == (3, None)
    assert process.describe_exit(-9) == (137, "killed by SIGKILL")
