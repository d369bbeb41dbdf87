"""``stq run`` killed with SIGKILL: no runner, server or command it started is left."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.acceptance.support import STQ, pid_alive, write
from tests.acceptance.test_run import descendants
from tests.helpers import scrubbed_env, wait_until

#: Seconds a tethered child may take to go: two SIGTERMs, then SIGKILL after
#: ``stq.cli.tether.STOP_GRACE`` (8 s) at worst, and a margin for a loaded machine.
GONE_WITHIN = 30.0

LONG = """\
name: long
tasks:
  first: {command: 'echo $$ > first.pid; sleep 600'}
  second: {command: 'echo $$ > second.pid; sleep 600'}
  later: {command: 'true', depends_on: [first, second]}
"""


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def test_sigkill_of_stq_run_leaves_no_process_it_started(tmp_path: Path) -> None:
    wf = write(tmp_path / "long.yaml", LONG)
    proc = subprocess.Popen(
        [STQ, "run", str(wf), "-j", "2"],
        cwd=tmp_path,
        env=scrubbed_env({"TMPDIR": str(tmp_path)}),  # its temporary directory stays there
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started: set[int] = set()
    try:
        pids = [tmp_path / "first.pid", tmp_path / "second.pid"]
        wait_until(lambda: all(p.exists() for p in pids), timeout=30, what="both tasks running")
        started = descendants(proc.pid)
        lines = [command_line(pid) for pid in started]
        assert sum("stq worker" in line for line in lines) == 2, lines  # the runners
        assert sum("gunicorn" in line for line in lines) >= 2, lines  # master and a worker
        assert sum("sleep 600" in line for line in lines) >= 2, lines  # the commands
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: only the tether can tell
        proc.wait(10)
        wait_until(
            lambda: not [pid for pid in started if pid_alive(pid)],
            timeout=GONE_WITHIN,
            interval=0.1,
            what="every process stq run started to go",
        )
    finally:
        for pid in started:  # an escaped one must not retry for ever
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
