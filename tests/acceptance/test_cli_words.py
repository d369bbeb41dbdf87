"""What a newcomer reads: progress that adds up, reasons that say why, one word per thing.

Each test drives the installed ``stq`` against a real server and a real runner
and reads what a person would read.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from stq.cli import build_parser
from tests.acceptance.support import STQ, Api, assert_one_line_error, stq, submit, write
from tests.helpers import scrubbed_env, wait_until

#: Five tasks, four of which fail, each in its own way.
MIXED = """\
name: mixed
tasks:
  fine: {command: 'true'}
  exits: {command: 'exit 3'}
  after-exits: {command: 'true', depends_on: [exits]}
  overruns: {command: 'sleep 30', duration: 1}
  flaky-step: {command: 'echo flaky said this; exit 1'}
"""


def rows(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the table whose header line starts with ``header``, by their first cell.

    The table runs to the first empty line; cells are split on two or more spaces.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    table = lines[start : lines.index("", start) if "" in lines[start:] else None]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in table)}


def test_a_finished_workflow_counts_every_task_done_and_says_why_each_failed(
    tmp_path: Path, start_server, start_runner
) -> None:
    server = start_server()
    start_runner(server.url)
    env = {"STQ_SERVER": server.url}
    waited = stq("submit", str(write(tmp_path / "w.yaml", MIXED)), "--wait", env=env)
    assert waited.returncode == 1, waited.stderr
    progress = [line for line in waited.stdout.splitlines() if " done: " in line]
    assert progress[-1].endswith("] 5/5 done: 1 completed, 4 failed"), waited.stdout
    summary = rows(waited.stdout, "TASK ")
    assert summary["TASK"] == ["TASK", "STATE", "ATTEMPTS", "SECONDS", "REASON"]
    assert summary["exits"][-1] == "exit code 3"
    assert summary["flaky-step"][-1] == "exit code 1"
    assert summary["after-exits"][-1] == "upstream_failed"
    assert "duration" in summary["overruns"][-1]
    assert summary["fine"][1:3] == ["completed", "1"] and len(summary["fine"]) == 4  # no reason

    wf_id = waited.stdout.splitlines()[0]
    listing = rows(stq("status", env=env).stdout, "NAME ")
    assert listing["mixed"][1:4] == [wf_id, "failed", "5/5 (4 failed)"]
    status = stq("status", wf_id, env=env).stdout
    assert status.startswith(f"workflow mixed ({wf_id}): failed, 5/5 done: 1 completed, 4 failed")
    tasks = rows(status, "TASK ")
    assert tasks["TASK"] == ["TASK", "TASK ID", "STATE", "ATTEMPTS", "SECONDS", "REASON"]
    assert tasks["exits"][2:4] == ["failed", "1"] and tasks["exits"][-1] == "exit code 3"
    assert "duration" in tasks["overruns"][-1]
    assert tasks["after-exits"][2:] == ["failed", "0", "upstream_failed"]
    for text in (waited.stdout, status):
        assert not re.search(r"Completed|Failed|To Do|In Process|TRIES", text), text
    assert all(len(line) <= 80 for line in status.splitlines())


def test_a_cancelled_workflow_says_it_was_cancelled(
    tmp_path: Path, start_server, start_runner
) -> None:
    server = start_server()
    env = {"STQ_SERVER": server.url}
    wf = write(tmp_path / "w.yaml", "name: long\ntasks:\n  a: {command: 'touch ran; sleep 60'}\n")
    follower = subprocess.Popen(
        [STQ, "submit", str(wf), "--wait"],
        env=scrubbed_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        start_runner(server.url)
        wait_until(lambda: (tmp_path / "ran").exists(), timeout=20, what="the task to start")
        wf_id = Api(server.url).get("/api/v1/workflows")["workflows"][0]["id"]
        cancelled = stq("cancel", wf_id, env=env)
        assert cancelled.stdout == f"{wf_id}: failed (cancelled)\n", cancelled.stderr
        out, _ = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert out.rstrip().endswith(f"workflow long ({wf_id}): failed (cancelled)"), out
    assert rows(out, "TASK ")["a"][-1] == "cancelled"
    status = stq("status", wf_id, env=env).stdout
    assert status.startswith(f"workflow long ({wf_id}): failed (cancelled), "), status


def test_logs_takes_a_unique_task_name_and_says_where_ids_are(
    tmp_path: Path, start_server, start_runner
) -> None:
    server = start_server()
    start_runner(server.url)
    env = {"STQ_SERVER": server.url}
    api = Api(server.url)
    first = submit(server.url, write(tmp_path / "w.yaml", MIXED))
    api.wait_state(first, "failed")

    by_name = stq("logs", "flaky-step", env=env)
    assert (by_name.returncode, by_name.stdout) == (0, "flaky said this\n"), by_name.stderr
    unknown = stq("logs", "no-such-step", env=env)
    assert_one_line_error(unknown, 1)
    assert unknown.stderr.startswith("stq: no task with id or name 'no-such-step'")
    assert "stq status WORKFLOW_ID" in unknown.stderr

    second = submit(server.url, write(tmp_path / "w.yaml", MIXED))
    api.wait_state(second, "failed")
    ids = {wf: api.task(wf, "flaky-step")["id"] for wf in (first, second)}
    ambiguous = stq("logs", "flaky-step", env=env)
    assert_one_line_error(ambiguous, 1)
    assert "2 tasks are named 'flaky-step'" in ambiguous.stderr
    assert all(f"{ids[wf]} (workflow {wf})" in ambiguous.stderr for wf in ids)
    assert "stq status WORKFLOW_ID" in ambiguous.stderr
    assert stq("logs", ids[second], env=env).stdout == "flaky said this\n"
    missing = stq("status", "w999", env=env)
    assert_one_line_error(missing, 1)
    assert missing.stderr.startswith("stq: no workflow with id 'w999'"), missing.stderr


def subcommands() -> list[str]:
    """The subcommands ``stq --help`` lists."""
    listed = build_parser().format_help()
    return re.findall(r"^    ([a-z][a-z-]*)\s", listed, re.MULTILINE)


def test_subcommands_are_all_listed() -> None:
    assert {"validate", "submit", "worker", "server", "run", "status", "logs"} <= set(
        subcommands()
    )


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_help_describes_it_and_each_argument(command: str) -> None:
    shown = subprocess.run([STQ, command, "--help"], capture_output=True, text=True, check=True)
    usage, description, *sections = shown.stdout.split("\n\n")
    assert usage.startswith(f"usage: stq {command}")
    assert re.fullmatch(r"[A-Z][^\n]+\.", description), description
    for section in sections:
        _title, *entries = section.splitlines()
        for i, line in enumerate(entries):
            starts_entry = line.startswith("  ") and not line.startswith("   ")
            if not starts_entry:
                continue
            helped_here = re.match(r"  \S.*?\S {2,}\S", line)
            helped_below = i + 1 < len(entries) and entries[i + 1].startswith("     ")
            assert helped_here or helped_below, f"{command}: no help for {line.strip()!r}"


def test_server_help_shows_the_bind_default_and_worker_explains_idle_exit() -> None:
    server = subprocess.run([STQ, "server", "--help"], capture_output=True, text=True).stdout
    assert "default 127.0.0.1:8000" in " ".join(server.split())
    worker = subprocess.run([STQ, "worker", "--help"], capture_output=True, text=True).stdout
    idle = " ".join(worker.rsplit("--exit-when-idle SECONDS", 1)[1].split())
    assert idle.startswith("exit after this many seconds with nothing to run")
