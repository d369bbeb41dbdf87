"""A 2,000-task workflow: the page renders in under 2 s and refreshes move under 1 MiB."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import FIGURES, Watched
from tests.dashboard.pages import edges, list_count, open_view, stats
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
PARTS = 1998
MIB = 1024 * 1024


def wide(name: str) -> dict[str, Any]:
    """root -> 1,998 parts -> final (depending on every 50th part): 2,000 tasks."""
    tasks: dict[str, Any] = {"root": {"command": "true"}}
    for i in range(PARTS):
        tasks[f"part-{i:04d}"] = {"command": f"./part.sh {i}", "depends_on": ["root"]}
    every_50th = [f"part-{i:04d}" for i in range(0, PARTS, 50)]
    tasks["final"] = {"command": "true", "depends_on": every_50th}
    return {"name": name, "tasks": tasks}


def refreshes_after(page: Any, count: int) -> None:
    page.wait_for_function("n => window.stqStats.refreshes >= n", arg=count, timeout=10_000)


def test_2000_tasks_render_fast_and_refresh_small(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(wide("two-thousand"))
    started = time.monotonic()
    open_view(page, server.url, f"/workflows/{workflow_id}")
    page.wait_for_function("() => window.stqStats.firstRenderMs !== null", timeout=10_000)
    wall = time.monotonic() - started
    render_ms = stats(page)["firstRenderMs"]
    FIGURES["2,000-task render (navigation start to drawn)"] = f"{render_ms:.0f} ms"
    FIGURES["2,000-task render (test wall clock)"] = f"{wall * 1000:.0f} ms"
    assert render_ms < 2000

    groups = page.locator("svg.dag g.node.group")
    assert 0 < groups.count() < 20
    sizes = groups.evaluate_all("gs => gs.map((g) => +g.dataset.size)")
    assert sum(sizes) + page.locator("svg.dag g.node.task").count() == 2000
    assert list_count(page, "todo") == 2000
    expect(page.locator("details.tasks[data-state=todo] tbody tr")).to_have_count(200)

    api.run_next(0)  # root
    claims = [api.claim() for _ in range(5)]
    api.report(claims[0], 0)
    first = stats(page)
    refreshes_after(page, first["refreshes"] + 2)
    expect(page.locator("details.tasks[data-state=in_process] summary .n")).to_have_text("4")
    figures = stats(page)
    FIGURES["2,000-task refresh (changes only)"] = f"{figures['lastRefreshBytes']} bytes"
    FIGURES["2,000-task refresh (full read, largest)"] = f"{figures['maxRefreshBytes']} bytes"
    FIGURES["2,000-task refresh duration"] = f"{figures['lastRefreshMs']:.0f} ms"
    assert figures["maxRefreshBytes"] < MIB
    assert figures["lastRefreshBytes"] < 64 * 1024
    watched.shot("two_thousand_tasks")


def test_groups_expand_on_click_and_collapse_again(
    watched: Watched, server: LiveServer, submit: Any
) -> None:
    page = watched.page
    tasks: dict[str, Any] = {"root": {"command": "true"}}
    for prefix in ("fetch", "parse", "index", "thumb"):
        for i in range(80):
            tasks[f"{prefix}-{i:03d}"] = {"command": "true", "depends_on": ["root"]}
    workflow_id = submit({"name": "grouped", "tasks": tasks})
    open_view(page, server.url, f"/workflows/{workflow_id}")
    groups = page.locator("svg.dag g.node.group")
    expect(groups).to_have_count(4)
    assert edges(page) == {("root", f"{p}-*") for p in ("fetch", "parse", "index", "thumb")}
    page.locator("svg.dag g.node.group", has_text="parse-*").click()
    expect(page.locator("svg.dag g.node.task")).to_have_count(81)
    expect(groups).to_have_count(3)
    assert ("root", "parse-042") in edges(page)
    page.locator("#collapse").click()
    expect(groups).to_have_count(4)
    expect(page.locator("#collapse")).to_be_hidden()


def test_a_big_workflow_shows_tasks_that_ran_between_two_refreshes(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    """Past 300 tasks a refresh reads only what changed; tasks it never saw running count too."""
    page = watched.page
    workflow_id = submit(wide("quick-parts"))
    open_view(page, server.url, f"/workflows/{workflow_id}")
    page.wait_for_function("() => window.stqStats.firstRenderMs !== null", timeout=10_000)
    before = stats(page)["refreshes"]
    for _ in range(11):  # root, then 10 parts: each claimed and ended at once
        api.run_next(0)
    refreshes_after(page, before + 2)
    expect(page.locator("details.tasks[data-state=completed] summary .n")).to_have_text("11")
    assert list_count(page, "todo") == 1989
