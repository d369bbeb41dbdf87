"""The Delete button: only for a finished workflow, asks first, deletes, says a refusal."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import TOKEN, Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, open_view, wait_node_state
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser


def one_task(name: str) -> dict[str, Any]:
    return {"name": name, "tasks": {"only": {"command": "true"}}}


def confirm(page: Page, answer: str) -> None:
    """Click Delete and answer its dialog: ``yes`` or ``no``."""
    page.locator("#delete").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete workflow")
    dialog.locator(f"button.{answer}").click()
    expect(dialog).to_have_count(0)


def test_delete_shows_only_once_finished_asks_first_then_forgets_the_workflow(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(one_task("to-delete"))
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "only", "todo")
    expect(page.locator("#cancel")).to_be_enabled()
    expect(page.locator("#delete")).to_be_hidden()  # running: nothing to offer

    api.run_next(0)
    wait_node_state(page, "only", "completed")
    expect(page.locator("#delete")).to_be_visible(timeout=SEEN_WITHIN_MS)
    confirm(page, "no")
    assert api.status("GET", f"/workflows/{workflow_id}") == 200, "deleted although kept"
    assert page.evaluate("location.hash") == f"#/workflows/{workflow_id}"
    watched.shot("delete_offered")

    confirm(page, "yes")
    expect(page.locator("#flash")).to_have_text("Deleted workflow to-delete.")
    page.wait_for_function("location.hash === '#/'")
    expect(page.locator("section.view.workflows")).to_be_visible()
    expect(page.locator("table.list tbody tr", has_text="to-delete")).to_have_count(0)
    assert api.status("GET", f"/workflows/{workflow_id}") == 404
    expect(page.locator("#main p.gone")).to_have_count(0)  # the list stays, not "gone"


def test_a_refused_delete_is_said_and_the_workflow_stays(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(one_task("delete-refused"))
    api.run_next(1)
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "only", "failed")
    page.locator("#delete").click()
    expect(page.locator("dialog.confirm")).to_be_visible()
    api.retry(workflow_id)  # running again before the answer: the server says 409
    page.locator("dialog.confirm button.yes").click()
    expect(page.locator("#flash")).to_contain_text("Could not delete workflow delete-refused")
    expect(page.locator("#flash")).to_contain_text("cancel it first")
    assert api.status("GET", f"/workflows/{workflow_id}") == 200
    assert page.evaluate("location.hash") == f"#/workflows/{workflow_id}"
    expect(page.locator("#delete")).to_be_hidden(timeout=SEEN_WITHIN_MS)


def test_delete_sends_the_token_the_page_was_given(watched: Watched, guarded: LiveServer) -> None:
    page = watched.page
    api = ApiClient(guarded.url, token=TOKEN)
    workflow_id = api.submit(one_task("guarded-delete"))
    api.run_next(0)
    open_view(page, guarded.url, f"/workflows/{workflow_id}")
    page.fill("#token", TOKEN)
    page.click("#login button[type=submit]")
    confirm(page, "yes")
    page.wait_for_function("location.hash === '#/'")
    expect(page.locator("#flash")).to_have_text("Deleted workflow guarded-delete.")
    assert api.status("GET", f"/workflows/{workflow_id}") == 404
