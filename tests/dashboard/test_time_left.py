"""One time left: the workflows list and the workflow's page show the server's estimate."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from stq.cli.progress import time_left_text
from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, open_view
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser


def test_the_list_and_the_workflow_page_show_the_same_time_left(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(
        {
            "name": "estimated",
            "tasks": {
                "quick": {"command": "true"},
                "build": {"command": "./build.sh", "duration": "1m30s"},
                "test": {"command": "./test.sh", "duration": 45, "depends_on": ["build"]},
                "lint": {"command": "./lint.sh", "duration": 30},
            },
        }
    )
    api.run_next(0)  # quick: one task done, so a rate (elapsed per task) could be guessed
    answer = api.workflow(workflow_id)
    assert answer["time_left"] == 90 + 45  # nothing runs: the estimate stands still
    shown = time_left_text(answer)
    assert shown == "~2m 15s"  # what `stq submit --wait` prints for it

    open_view(page, server.url, "/")
    row = page.locator(f"table.list tbody tr[data-key='{workflow_id}']")
    headings = page.locator("table.list thead th").all_inner_texts()
    cell = row.locator("td").nth(headings.index("Time left"))
    expect(cell).to_have_text(shown, timeout=SEEN_WITHIN_MS)

    row.locator("a.wf-name").click()
    left = page.locator(".summary .meta", has_text="time left")
    expect(left).to_have_text(f"time left {shown}", timeout=SEEN_WITHIN_MS)
    watched.shot("time_left_workflow")

    api.cancel(workflow_id)  # no longer running: no time left anywhere
    expect(left).to_have_count(0, timeout=SEEN_WITHIN_MS)
    page.go_back()
    expect(cell).to_have_text("", timeout=SEEN_WITHIN_MS)
