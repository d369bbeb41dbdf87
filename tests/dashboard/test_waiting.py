"""A To Do task's page says why it waits: dependencies, a retry delay, labels, a runner."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import open_view
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
#: A label no runner of these tests has.
NOBODY_HAS = "tpu-nobody-has"


def waiting_line(page: Page) -> Any:
    return page.locator(".view.task p.waiting")


def test_a_todo_tasks_page_names_the_dependencies_it_waits_for_with_links(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {
            "name": "waits-for-deps",
            "tasks": {
                "fetch": {"command": "true"},
                "build": {"command": "true"},
                "report": {"command": "true", "depends_on": ["fetch", "build"]},
            },
        }
    )
    tasks = api.tasks(workflow_id)
    open_view(page, server.url, f"/tasks/{tasks['report']['id']}")
    line = waiting_line(page)
    expect(line).to_have_text(
        re.compile(r"^Waiting for dependencies: (fetch, build|build, fetch)$")
    )
    expect(line.locator("a")).to_have_count(2)
    watched.shot("task_waits_for_dependencies")
    line.get_by_role("link", name="fetch").click()
    assert page.evaluate("location.hash") == f"#/tasks/{tasks['fetch']['id']}"
    expect(page.locator(".view.task h1")).to_have_text("fetch")
    expect(waiting_line(page)).to_have_text("Waiting for a free runner")

    open_view(page, server.url, f"/workflows/{workflow_id}")
    cell = page.locator("details.tasks[data-state=todo] tr", has_text="report").locator(".waiting")
    expect(cell).to_contain_text("dependencies: ")
    expect(cell).to_have_attribute("title", re.compile(r"^Waiting for dependencies: "))


def test_a_todo_tasks_page_says_no_runner_has_its_labels_or_its_retry_delay_runs(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {
            "name": "waits-for-labels",
            "tasks": {
                "needs-tpu": {"command": "true", "labels": [NOBODY_HAS, "x"]},
                "flaky": {"command": "false", "max_attempts": 2, "retry_delay": "1h"},
            },
        }
    )
    claim = api.claim("waits-runner")  # a runner without labels can only take flaky
    assert claim["task_name"] == "flaky"
    api.report(claim, 1)
    tasks = api.tasks(workflow_id)
    assert tasks["flaky"]["state"] == "todo"

    open_view(page, server.url, f"/tasks/{tasks['needs-tpu']['id']}")
    expect(waiting_line(page)).to_have_text(
        re.compile(
            rf"^Waiting for a runner with labels ({NOBODY_HAS}, x|x, {NOBODY_HAS}): "
            r"no runner seen in the last 10 minutes has them all$"
        )
    )
    watched.shot("task_waits_for_labels")

    open_view(page, server.url, f"/tasks/{tasks['flaky']['id']}")
    line = waiting_line(page)
    expect(line).to_have_text(re.compile(r"^Waiting for its retry delay, until .*\d\d:\d\d:\d\d$"))
    until = tasks["flaky"]["waiting_for"]["until"]
    expect(line.locator("time")).to_have_attribute("datetime", until)
