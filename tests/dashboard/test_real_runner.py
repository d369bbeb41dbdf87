"""A real ``stq worker`` runs the commands; the open page follows it without a reload."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, node_states, open_view, wait_node_state
from tests.helpers import BIN, SHUTDOWN_TIMEOUT, LiveServer, scrubbed_env

pytestmark = pytest.mark.browser
PRINTS = "<script>alert(3)</script>"


@pytest.fixture
def start_worker(server: LiveServer, tmp_path: Path) -> Iterator[Any]:
    """Start ``stq worker URL --exit-when-idle 2`` on demand; never leave one behind."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start() -> subprocess.Popen[bytes]:
        cmd = [str(BIN / "stq"), "worker", server.url, "--name", "dash-runner"]
        procs.append(
            subprocess.Popen(
                [*cmd, "--exit-when-idle", "2"],
                cwd=tmp_path,
                env=scrubbed_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return procs[-1]

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(SHUTDOWN_TIMEOUT)


def test_a_real_runner_moves_the_page_and_its_failure_output_shows(
    watched: Watched, server: LiveServer, submit: Any, start_worker: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {
            "name": "real-runner",
            "tasks": {
                "prepare": {"command": "echo preparing"},
                "crash": {
                    "command": f"echo '{PRINTS}'; echo crashed >&2; exit 4",
                    "depends_on": ["prepare"],
                },
                "after-crash": {"command": "echo never", "depends_on": ["crash"]},
                "side": {"command": ["python3", "-c", "print('side done')"]},
            },
        }
    )
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "prepare", "todo")
    page.evaluate("window.__sameDocument = true")
    worker = start_worker()
    wait_node_state(page, "crash", "failed")
    wait_node_state(page, "after-crash", "failed")
    wait_node_state(page, "side", "completed")
    assert node_states(page)["prepare"] == "completed"
    expect(page.locator("g.node.task[data-task=after-crash] text.sub")).to_have_text(
        "upstream failed"
    )
    expect(page.locator(".view-head .badge")).to_have_text("Failed", timeout=SEEN_WITHIN_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    watched.shot("real_runner_workflow")

    page.locator("g.node.task[data-task=crash]").click()
    pre = page.locator("section.output pre")
    expect(pre).to_contain_text(PRINTS)
    expect(pre).to_contain_text("crashed")
    expect(page.locator("table.list tbody tr").first).to_contain_text("dash-runner")
    assert page.locator("main script").count() == 0
    assert worker.wait(SHUTDOWN_TIMEOUT) == 0
    watched.shot("real_runner_task")
