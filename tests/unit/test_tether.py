"""A tethered child stops when its parent's end of the pipe closes, however it handles SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stq.cli.tether import STOP_GRACE, Tether, tethered
from tests.helpers import scrubbed_env

#: A module that says it is ready, then waits; with "stubborn" it ignores SIGTERM.
CHILD = """\
import signal, sys, time
if sys.argv[1:] == ["stubborn"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
"""


def start_child(tmp_path: Path, tether: Tether, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "waiter.py").write_text(CHILD)
    env = tether.env(scrubbed_env({"PYTHONPATH": str(tmp_path)}))
    child = subprocess.Popen(
        tethered([sys.executable, "-m", "waiter", *args]),
        env=env,
        pass_fds=tether.pass_fds,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


@pytest.mark.parametrize(
    ("args", "within"), [((), 5.0), (("stubborn",), STOP_GRACE + 10.0)], ids=["obeys", "stubborn"]
)
def test_child_goes_when_the_parent_end_closes(
    tmp_path: Path, args: tuple[str, ...], within: float
) -> None:
    tether = Tether()
    child = start_child(tmp_path, tether, *args)
    try:
        assert child.poll() is None  # ready, and held by the open tether
        tether.close()
        child.wait(within)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "stq run is gone: stopping" in child.communicate()[1]


def test_tethered_runs_the_same_module_through_the_tether() -> None:
    python = sys.executable
    assert tethered([python, "-m", "stq", "worker"]) == [
        python,
        "-m",
        "stq.cli.tether",
        "stq",
        "worker",
    ]
    with pytest.raises(ValueError, match="python -m MODULE"):
        tethered([python, "script.py"])
