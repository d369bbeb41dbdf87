"""Progress reads the same everywhere: done = terminal tasks; failures counted apart.

And every table and badge writes a state one way ("Completed", never "completed").
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, bar_fill, open_view, wait_node_state
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
#: The one display form of the states shown in tables and badges.
TASK_STATES = {"To Do", "In Process", "Completed", "Failed"}
SHOWN = TASK_STATES | {"Running", "Timed out", "Idle", "Busy", "Gone", "Skipped"}


def four_tasks(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "tasks": {t: {"command": "true"} for t in ("ok-1", "ok-2", "breaks", "last")},
    }


def assert_fill(bar: Locator, completed: float, failed: float) -> None:
    """The bar is filled by terminal tasks only: green for completed, red for failed."""
    fill = bar_fill(bar)
    assert set(fill) <= {"completed", "failed"}, f"non-terminal tasks fill the bar: {fill}"
    assert fill.get("completed", 0) == pytest.approx(completed, abs=0.02)
    assert fill.get("failed", 0) == pytest.approx(failed, abs=0.02)


def list_row(page: Page, name: str) -> Locator:
    return page.locator("section.workflows tbody tr", has_text=name)


def test_progress_counts_terminal_tasks_and_says_how_many_failed(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(four_tasks("progress-rule"))
    api.run_next(0)
    api.run_next(0)
    api.run_next(1)  # breaks
    last = api.claim()  # in process: counted apart, not done, not in the bar
    open_view(page, server.url)
    row = list_row(page, "progress-rule")
    expect(row.locator(".counts")).to_have_text("3/4 done · 1 failed · 1 running")
    assert_fill(row.locator(".progress"), completed=0.5, failed=0.25)
    open_view(page, server.url, f"/workflows/{workflow_id}")
    summary = page.locator(".summary")
    expect(summary.locator(".counts")).to_have_text("3/4 done · 1 failed · 1 running")
    assert_fill(summary.locator(".progress"), completed=0.5, failed=0.25)

    api.report(last, 0)  # finished: every task done, one of them failed
    expect(summary.locator(".counts")).to_have_text("4/4 done · 1 failed", timeout=SEEN_WITHIN_MS)
    assert_fill(summary.locator(".progress"), completed=0.75, failed=0.25)
    expect(summary.locator(".progress")).to_have_attribute("aria-label", "4/4 done · 1 failed")
    open_view(page, server.url)
    expect(row.locator(".counts")).to_have_text("4/4 done · 1 failed")
    assert_fill(row.locator(".progress"), completed=0.75, failed=0.25)
    watched.shot("progress_finished_with_failures")


def test_a_groups_progress_follows_the_same_rule(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    tasks = {f"part-{i:03d}": {"command": "true"} for i in range(260)}
    workflow_id = submit({"name": "group-progress", "tasks": tasks})
    api.run_next(0)
    api.run_next(1)
    api.claim()
    open_view(page, server.url, f"/workflows/{workflow_id}")
    group = page.locator("svg.dag g.node.group")
    expect(group.locator("text.sub")).to_have_text("2/260 done · 1 failed")
    widths = group.evaluate(
        """(g) => Object.fromEntries([...g.querySelectorAll('.bar rect')]
            .map((r) => [r.getAttribute('class'), r.width.baseVal.value]))"""
    )
    whole = widths.pop("track")
    assert widths == pytest.approx(
        {"seg state-completed": whole / 260, "seg state-failed": whole / 260}
    )


def shown_states(page: Page, selector: str) -> list[str]:
    """The texts of the badges under ``selector``, as displayed."""
    texts = page.locator(selector).all_inner_texts()
    assert texts, f"no badge under {selector}"
    assert set(texts) <= SHOWN, f"states not in their display form: {texts}"
    return texts


def test_states_are_written_one_way_in_every_table(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit({"name": "state-words", "tasks": {"fine": {"command": "true"}}})
    claim = api.claim("words-runner")
    open_view(page, server.url, "/runners")
    busy = page.locator("table.runners tr", has_text="words-runner")
    expect(busy.locator(".badge")).to_have_text("Busy")
    shown_states(page, "table.runners .badge")
    api.report(claim, 0)
    open_view(page, server.url)
    row = list_row(page, "state-words")
    expect(row.locator(".badge")).to_have_text("Completed")
    shown_states(page, "section.workflows tbody .badge")
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "fine", "completed")
    expect(page.locator(".view-head .badge")).to_have_text("Completed")
    expect(page.locator("details.tasks[data-state=completed] summary")).to_have_text(
        re.compile(r"^Completed 1$")
    )
    page.locator("g.node.task[data-task=fine]").click()
    expect(page.locator(".view.task .view-head .badge")).to_have_text("Completed")
    expect(page.locator(".view.task tbody .badge")).to_have_text("Completed")
    shown_states(page, "main .badge")
