"""``stq run``: the examples, dependency order, retries, overruns, Ctrl-C; nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.acceptance.support import STQ, pid_alive, stq, write
from tests.conftest import EXAMPLES
from tests.helpers import scrubbed_env, wait_until

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def expected_end(path: Path) -> int:
    """The exit code the example's own comment promises ('ends: completed' or 'failed')."""
    match = re.search(r"ends: (completed|failed)", path.read_text())
    assert match, f"{path.name} does not say how it ends"
    return 0 if match.group(1) == "completed" else 1


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_example_ends_as_it_says(example: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    result = stq("run", str(example), "-j", "8", cwd=tmp_path)
    assert result.returncode == expected_end(example), result.stdout + result.stderr
    assert re.search(r"workflow \S+ \(\S+\): (completed|failed)\n$", result.stdout)
    assert time.monotonic() - started < 30


def test_examples_are_all_there() -> None:
    names = {p.stem for p in EXAMPLE_FILES}
    assert {"build-and-test", "word-count", "flaky", "overrun", "failing-branch"} <= names


def test_labels_priority_order_with_one_runner(tmp_path: Path) -> None:
    example = EXAMPLES / "labels-priority.yaml"
    assert stq("run", str(example), "-j", "1", cwd=tmp_path).returncode == 0
    order = (tmp_path / "stq-example-out/labels-priority/order.txt").read_text().split()
    assert order == ["urgent", "labelled", "normal-a", "normal-b", "background"]


def test_dependency_order_from_the_commands_own_files(tmp_path: Path) -> None:
    # A diamond: each task appends its name and checks its dependencies wrote first.
    stamp = 'echo {me} >> order.txt; for d in {deps}; do grep -qx "$d" order.txt || exit 9; done'
    wf = write(
        tmp_path / "diamond.yaml",
        f"""\
        name: diamond
        tasks:
          top: {{command: '{stamp.format(me="top", deps="")}'}}
          left: {{command: '{stamp.format(me="left", deps="top")}', depends_on: [top]}}
          right: {{command: '{stamp.format(me="right", deps="top")}', depends_on: [top]}}
          bottom:
            command: '{stamp.format(me="bottom", deps="left right")}'
            depends_on: [left, right]
        """,
    )
    result = stq("run", str(wf), "-j", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    order = (tmp_path / "order.txt").read_text().split()
    assert order[0] == "top" and order[-1] == "bottom"
    assert sorted(order[1:3]) == ["left", "right"]


def test_flaky_takes_three_attempts_with_stq_variables(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "flaky.yaml",
        """\
        name: flaky
        tasks:
          step:
            command: >-
              echo "$STQ_TASK_NAME $STQ_ATTEMPT_NUMBER" >> tries.txt;
              [ "$STQ_ATTEMPT_NUMBER" = 3 ]
            max_attempts: 3
        """,
    )
    result = stq("run", str(wf), "-j", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "tries.txt").read_text().split("\n")[:3] == ["step 1", "step 2", "step 3"]
    assert re.search(r"step\s+completed\s+3\b", result.stdout)


def test_overrun_kills_the_command_and_its_child(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "overrun.yaml",
        """\
        name: overrun
        tasks:
          slow:
            command: 'sleep 60 & echo $! > child.pid; echo $$ > parent.pid; wait'
            duration: 1
          after: {command: 'touch after-ran', depends_on: [slow]}
        """,
    )
    started = time.monotonic()
    result = stq("run", str(wf), "-j", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert time.monotonic() - started < 15
    for name in ("parent.pid", "child.pid"):
        pid = int((tmp_path / name).read_text())
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=5, what=f"{name} {pid} gone")
    assert not (tmp_path / "after-ran").exists()
    assert "upstream_failed" in result.stdout


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` right now (from /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def test_ctrl_c_cancels_and_leaves_no_process(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "long.yaml",
        """\
        name: long
        tasks:
          forever: {command: 'echo $$ > running.pid; sleep 60'}
          later: {command: 'true', depends_on: [forever]}
        """,
    )
    proc = subprocess.Popen(
        [STQ, "run", str(wf), "-j", "2"],
        cwd=tmp_path,
        env=scrubbed_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: (tmp_path / "running.pid").exists(), timeout=20, what="task start")
        children = descendants(proc.pid)
        assert len(children) >= 4  # gunicorn master + worker, two runners, the command
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out
    assert "cancelling" in out and "Traceback" not in out
    for pid in children:
        wait_until(lambda pid=pid: not pid_alive(pid), timeout=5, what=f"pid {pid} gone")


def marked_pids(mark: str) -> set[int]:
    """Live processes whose environment carries ``STQ_TEST_MARK=mark`` (they inherit it)."""
    needle = f"STQ_TEST_MARK={mark}".encode()
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return {pid for pid in found if pid_alive(pid)}


@pytest.mark.parametrize("seen", [1, 6, 14])
def test_sigterm_during_start_up_leaves_no_process(tmp_path: Path, seen: int) -> None:
    # SIGTERM while the runners are being spawned: one caught between its fork and
    # being recorded used to outlive `stq run`, retrying a dead server forever.
    wf = write(tmp_path / "long.yaml", "name: long\ntasks:\n  t: {command: 'sleep 60'}\n")
    mark = f"{tmp_path.name}-{seen}"
    proc = subprocess.Popen(
        [STQ, "run", str(wf), "-j", "24"],
        cwd=tmp_path,
        env=scrubbed_env({"STQ_TEST_MARK": mark}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(descendants(proc.pid)) >= seen, 20, 0.001, f"{seen} children")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "Traceback" not in out, out
        wait_until(lambda: not marked_pids(mark), 10, 0.05, "no process of stq run left")
    finally:
        for pid in marked_pids(mark) | ({proc.pid} if proc.poll() is None else set()):
            os.kill(pid, signal.SIGKILL)  # an escaped one must not retry for ever
        proc.wait(10)
