"""The dashboard against a live server: list, graph, live states, output, cancel, XSS."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import (
    SEEN_WITHIN_MS,
    edges,
    list_count,
    node_states,
    open_view,
    wait_node_state,
)
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"


def diamond(name: str) -> dict[str, Any]:
    """fetch -> (left, right) -> join, with markup in every free-text field."""
    return {
        "name": name,
        "description": f"{XSS} nightly {SCRIPT}",
        "tasks": {
            "fetch": {"command": f"echo '{XSS}'"},
            "left": {"command": f"echo '{SCRIPT}'", "depends_on": ["fetch"]},
            "right": {"command": ["python3", "-c", "print(1)"], "depends_on": ["fetch"]},
            "join": {"command": "echo join", "depends_on": ["left", "right"]},
        },
    }


def test_list_shows_the_workflow_and_its_graph_matches_depends_on(
    watched: Watched, server: LiveServer, submit: Any
) -> None:
    page = watched.page
    doc = diamond("list-and-graph")
    workflow_id = submit(doc)
    open_view(page, server.url)
    row = page.locator("table.list tbody tr", has_text="list-and-graph")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("0/4")
    row.get_by_role("link", name="list-and-graph").click()
    assert page.evaluate("location.hash") == f"#/workflows/{workflow_id}"
    expect(page.locator("svg.dag g.node.task")).to_have_count(4)
    assert node_states(page) == dict.fromkeys(doc["tasks"], "todo")
    expected = {(dep, name) for name, t in doc["tasks"].items() for dep in t.get("depends_on", [])}
    assert edges(page) == expected
    expect(page.locator("p.desc")).to_have_text(doc["description"])
    expect(page.locator("details.tasks[data-state=todo] code").first).to_have_text(f"echo '{XSS}'")
    assert page.locator("main img, main script").count() == 0
    watched.shot("workflow_graph")


def test_states_change_on_screen_as_a_runner_works_without_reload(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(diamond("live-states"))
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "fetch", "todo")
    page.evaluate("window.__sameDocument = true")
    claim = api.claim()
    assert claim["task_name"] == "fetch"
    wait_node_state(page, "fetch", "in_process")
    expect(page.locator("g.node.task[data-task=fetch] .pulse")).to_be_visible()
    expect(page.locator("details.tasks[data-state=in_process] tbody")).to_contain_text("fetch")
    api.report(claim, 0, "fetched\n")
    wait_node_state(page, "fetch", "completed")
    for _ in range(3):
        api.run_next(0)
    wait_node_state(page, "join", "completed")
    expect(page.locator(".view-head .badge")).to_have_text("Completed", timeout=SEEN_WITHIN_MS)
    assert list_count(page, "completed") == 4
    assert list_count(page, "todo") == 0
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    watched.shot("workflow_completed")


def test_a_failed_tasks_output_shows_in_its_task_view_as_text(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit({"name": "fails", "tasks": {"boom": {"command": "./boom.sh"}}})
    lines = "".join(f"step {i}\n" for i in range(400))
    api.report(api.claim(), 3, f"{lines}{SCRIPT}\n{XSS}\nboom: giving up\n")
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "boom", "failed")
    expect(page.locator("g.node.task[data-task=boom] text.sub")).to_have_text("failed · 1 attempt")
    page.locator("g.node.task[data-task=boom]").click()
    pre = page.locator("section.output pre")
    expect(pre).to_contain_text(f"{SCRIPT}\n{XSS}\nboom: giving up")
    row = page.locator("table.list tbody tr").first
    expect(row).to_contain_text("Failed")
    expect(row.locator("td").nth(5)).to_have_text("3")
    at_end = pre.evaluate("p => p.scrollHeight - p.scrollTop - p.clientHeight")
    assert at_end < 4, "the output is not scrolled to its end"
    assert page.locator("main img, main script").count() == 0
    watched.shot("task_failed_output")


def test_cancel_and_retry_buttons_ask_then_act(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(diamond("to-cancel"))
    api.claim()  # fetch is in process when the button is pressed
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "fetch", "in_process")
    page.locator("#cancel").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    assert api.workflow(workflow_id)["state"] == "running", "cancelled before confirming"
    dialog.locator("button.yes").click()
    wait_node_state(page, "join", "failed")
    tasks = api.tasks(workflow_id)
    assert {t["state"] for t in tasks.values()} == {"failed"}
    assert {t["reason"] for t in tasks.values()} == {"cancelled"}
    expect(page.locator(".view-head .badge")).to_have_text("Failed", timeout=SEEN_WITHIN_MS)
    expect(page.locator("#cancel")).to_be_disabled()
    assert list_count(page, "failed") == 4

    page.locator("#retry").click()
    dialog.locator("button.yes").click()
    wait_node_state(page, "join", "todo")
    assert {t["state"] for t in api.tasks(workflow_id).values()} == {"todo"}
    expect(page.locator("#cancel")).to_be_enabled()
    page.locator("#cancel").click()
    dialog.locator("button.yes").click()
    wait_node_state(page, "fetch", "failed")
    page.locator("a", has_text="Workflows").first.click()
    page.locator("button.filter[data-filter=failed]").click()
    expect(page.locator("table.list tbody tr", has_text="to-cancel")).to_be_visible()
    page.locator("button.filter[data-filter=running]").click()
    expect(page.locator("table.list tbody tr", has_text="to-cancel")).to_have_count(0)


def test_a_workflow_deleted_while_viewed_is_said_gone_and_its_page_cleared(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit({"name": "short-lived", "tasks": {"only": {"command": "true"}}})
    api.run_next(0)
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "only", "completed")
    api.delete(workflow_id)
    gone = page.locator("#main p.gone")
    expect(gone).to_contain_text("may have been deleted", timeout=SEEN_WITHIN_MS)
    expect(page.locator("svg.dag")).to_have_count(0)  # the old graph is not left up
    expect(page.locator("#cancel")).to_have_count(0)
    gone.locator("a").click()
    expect(page.locator("#main p.gone")).to_have_count(0)
