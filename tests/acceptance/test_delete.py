"""``stq delete``: a finished workflow is forgotten; a running or unknown one is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.support import Api, Runner, assert_one_line_error, stq, submit, write
from tests.helpers import LiveServer

pytestmark = pytest.mark.slow


def test_delete_forgets_a_finished_workflow_and_refuses_a_running_one(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server = start_server()
    done = submit(
        server.url, write(tmp_path / "a.yaml", "name: a\ntasks:\n  t: {command: 'true'}\n")
    )
    running = submit(
        server.url, write(tmp_path / "b.yaml", "name: b\ntasks:\n  t: {command: 'sleep 30'}\n")
    )
    start_runner(server.url)
    api = Api(server.url)
    api.wait_state(done, "completed")
    api.wait_task(running, "t", "in_process")

    refused = stq("delete", running, "--server", server.url)
    assert_one_line_error(refused, 1)
    assert api.workflow(running)["state"] == "running"

    deleted = stq("delete", done, "--server", server.url)
    assert deleted.returncode == 0 and deleted.stdout == f"{done}: deleted\n"
    gone = stq("status", done, "--server", server.url)
    assert_one_line_error(gone, 1)
    assert_one_line_error(stq("delete", done, "--server", server.url), 1)  # unknown now
