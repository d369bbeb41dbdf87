"""What a task's row and page say: attempts per round, limit apart from run time, why it failed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, cell, fact, open_view, wait_node_state
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer, wait_until

pytestmark = pytest.mark.browser
#: A run time as the dashboard writes one that lasted under a minute.
SECONDS = re.compile(r"^\d+s$")


def test_after_a_retry_attempts_show_this_round_and_all_rounds_apart(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit({"name": "retried", "tasks": {"once": {"command": "false"}}})
    api.run_next(1)
    task_id = api.tasks(workflow_id)["once"]["id"]
    open_view(page, server.url, f"/tasks/{task_id}")
    expect(fact(page, "Attempts")).to_have_text("1 of 1")

    api.retry(workflow_id)
    assert api.tasks(workflow_id)["once"]["attempts_used"] == 1  # the API counts all rounds
    expect(fact(page, "Attempts")).to_have_text(
        "0 of 1 this round, 1 in all", timeout=SEEN_WITHIN_MS
    )
    api.claim()
    expect(fact(page, "Attempts")).to_have_text(
        "1 of 1 this round, 2 in all", timeout=SEEN_WITHIN_MS
    )
    open_view(page, server.url, f"/workflows/{workflow_id}")
    attempts = cell(page, "in_process", task_id, "Attempts")
    expect(attempts).to_have_text("1 of 1 · 2 in all")
    expect(attempts.locator("span")).to_have_attribute(
        "title", "Attempts: 1 of 1 this round, 2 in all"
    )


def test_the_declared_limit_and_the_time_run_are_two_columns(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {"name": "limits", "tasks": {"timed": {"command": "true", "duration": "10m"}}}
    )
    task_id = api.tasks(workflow_id)["timed"]["id"]
    open_view(page, server.url, f"/workflows/{workflow_id}")
    expect(cell(page, "todo", task_id, "Limit")).to_have_text("10m 00s")
    expect(cell(page, "todo", task_id, "Ran")).to_have_text("")
    claim = api.claim()
    wait_node_state(page, "timed", "in_process")
    expect(cell(page, "in_process", task_id, "Limit")).to_have_text("10m 00s")
    expect(cell(page, "in_process", task_id, "Ran")).to_have_text(SECONDS)
    api.report(claim, 0)
    wait_node_state(page, "timed", "completed")
    expect(cell(page, "completed", task_id, "Limit")).to_have_text("10m 00s")
    expect(cell(page, "completed", task_id, "Ran")).to_have_text(SECONDS)
    page.locator("g.node.task[data-task=timed]").click()
    expect(fact(page, "Limit")).to_have_text("10m 00s")
    expect(fact(page, "Ran")).to_have_text(SECONDS)


def test_a_failed_tasks_reason_is_never_blank(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {
            "name": "reasons",
            "tasks": {
                "slow": {"command": "sleep 60", "duration": 0.2},
                "exits": {"command": "exit 3"},
                "killed": {"command": "sleep 60"},
                "after": {"command": "true", "depends_on": ["exits"]},
            },
        }
    )
    api.claim()  # slow: never reported, it outlives its duration
    api.report(api.claim(), 3)
    api.report(api.claim(), 143, message="killed by SIGTERM")
    wait_until(lambda: api.workflow(workflow_id)["state"] == "failed", what="slow to time out")
    tasks = api.tasks(workflow_id)
    open_view(page, server.url, f"/workflows/{workflow_id}")
    expected = {
        "slow": "duration exceeded",
        "exits": "exit code 3",
        "killed": "killed by SIGTERM (exit code 143)",
        "after": "upstream failed",
    }
    for name, reason in expected.items():
        expect(cell(page, "failed", tasks[name]["id"], "Reason")).to_have_text(reason)
    expect(cell(page, "failed", tasks["slow"]["id"], "Limit")).to_have_text("0.2s")
    watched.shot("failed_reasons")
    page.locator("g.node.task[data-task=slow]").click()
    expect(page.locator(".view.task .view-head .reason")).to_have_text("duration exceeded")
    row = page.locator(".view.task tbody tr").first
    expect(row.locator(".badge")).to_have_text("Timed out")
    expect(row.locator("td").last).to_have_text("duration exceeded")
