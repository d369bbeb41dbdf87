"""The Runners page: who the server heard from, idle, busy with a linked task, or gone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, open_view
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def runner_row(page: Page, name: str) -> Any:
    """The Runners table's row of runner ``name``."""
    return page.locator(f'table.runners tbody tr[data-key="{name}"]')


@pytest.fixture
def forgetful(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of its own (no runner heard from yet) that calls a runner gone after 1 s."""
    live = LiveServer(db=tmp_path / "stq.db", workers=1, env={"STQ_HEARTBEAT_TIMEOUT": "1"})
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_runners_page_shows_an_idle_runner_with_its_labels_and_a_busy_one_with_its_task(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    submit({"name": "runners-page", "tasks": {"held": {"command": "true"}}})
    claim = api.claim("busy-runner")
    assert claim["task_name"] == "held"
    assert api.ask("idle-runner", ["gpu", "fast"]).status_code == 204
    open_view(page, server.url)
    page.locator("nav.views a", has_text="Runners").click()
    assert page.evaluate("location.hash") == "#/runners"
    expect(page.locator("nav.views a[data-view=runners]")).to_have_attribute(
        "aria-current", "page"
    )

    idle = runner_row(page, "idle-runner")
    expect(idle.locator(".label")).to_have_text(["fast", "gpu"])
    expect(idle.locator(".badge")).to_have_text("Idle")
    expect(idle.locator("a")).to_have_count(0)
    last_seen = idle.locator("time")
    expect(last_seen).to_have_text(re.compile(r"^\d+ s ago$"))
    expect(last_seen).to_have_attribute("title", ISO_TIME)

    busy = runner_row(page, "busy-runner")
    expect(busy.locator(".badge")).to_have_text("Busy")
    link = busy.locator("a.task-link")
    expect(link).to_have_text("held")
    expect(link).to_have_attribute("href", f"#/tasks/{claim['task_id']}")
    watched.shot("runners_page")
    link.click()
    expect(page.locator(".view.task h1")).to_have_text("held")
    expect(page.locator("nav.views a[data-view=workflows]")).to_have_attribute(
        "aria-current", "page"
    )
    api.report(claim, 0)


def test_runners_page_says_none_was_heard_from_then_shows_one_that_came_and_went(
    watched: Watched, forgetful: LiveServer
) -> None:
    page = watched.page
    open_view(page, forgetful.url, "/runners")
    expect(page.locator(".view.runners p.empty")).to_contain_text(
        "No runner was heard from in the last 10 minutes"
    )
    expect(page.locator("table.runners")).to_be_hidden()
    assert ApiClient(forgetful.url).ask("brief-runner", ["x"]).status_code == 204
    row = runner_row(page, "brief-runner")
    expect(row.locator(".badge")).to_have_text("Gone", timeout=SEEN_WITHIN_MS)
    expect(row.locator(".badge")).to_have_class(re.compile(r"\brunner-gone\b"))
    expect(page.locator(".view.runners p.empty")).to_be_hidden()
