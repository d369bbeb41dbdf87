"""What the dashboard shows, read back from the live page (graph nodes, edges, lists)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Locator, Page

#: Long enough for a few 2 s refreshes, short enough to fail fast.
SEEN_WITHIN_MS = 8_000


def open_view(page: Page, url: str, route: str = "/") -> None:
    """Load the dashboard at a hash route (``/``, ``/workflows/ID``, ``/tasks/ID``)."""
    page.goto(f"{url}/#{route}")


def node_states(page: Page) -> dict[str, str]:
    """The graph's task nodes: name -> the state it is coloured with."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('svg.dag g.node.task')]
            .map((g) => [g.dataset.task, g.dataset.state]))"""
    )


def edges(page: Page) -> set[tuple[str, str]]:
    """The graph's edges as (dependency, dependent) pairs."""
    pairs = page.evaluate(
        """() => [...document.querySelectorAll('svg.dag .edges path')]
            .map((p) => [p.dataset.from, p.dataset.to])"""
    )
    return {(a, b) for a, b in pairs}


def edge_classes(page: Page) -> dict[tuple[str, str], str]:
    """How each edge is drawn: (dependency, dependent) -> its class ('' for a plain one)."""
    found = page.evaluate(
        """() => [...document.querySelectorAll('svg.dag .edges path')]
            .map((p) => [p.dataset.from, p.dataset.to, p.getAttribute('class') || ''])"""
    )
    return {(a, b): cls for a, b, cls in found}


def box_look(page: Page, name: str) -> dict[str, str]:
    """The computed fill, stroke and dashes of task ``name``'s box in the graph."""
    return page.locator(f"svg.dag g.node.task[data-task='{name}'] rect.box").evaluate(
        """(r) => { const s = getComputedStyle(r);
            return { fill: s.fill, stroke: s.stroke, dashes: s.strokeDasharray }; }"""
    )


def wait_node_state(page: Page, name: str, state: str) -> None:
    """Poll the page (no reload) until task ``name``'s node shows ``state``."""
    page.wait_for_function(
        """([name, state]) => [...document.querySelectorAll('svg.dag g.node.task')]
            .some((g) => g.dataset.task === name && g.dataset.state === state)""",
        arg=[name, state],
        timeout=SEEN_WITHIN_MS,
    )


def list_count(page: Page, state: str) -> int:
    """The number in the heading of one of the four task lists."""
    return int(page.locator(f"details.tasks[data-state={state}] summary .n").inner_text())


def stats(page: Page) -> dict[str, Any]:
    """The page's own refresh figures (bytes per refresh, render time)."""
    return page.evaluate("() => ({...window.stqStats})")


def cell(page: Page, state: str, task_id: str, column: str) -> Locator:
    """One cell of a task's row in one of the four lists, by the column's heading."""
    table = page.locator(f"details.tasks[data-state={state}] table")
    headings = table.locator("thead th").all_inner_texts()
    assert column in headings, f"no column {column!r} in the {state} list: {headings}"
    return table.locator(f"tbody tr[data-key='{task_id}'] td").nth(headings.index(column))


def fact(page: Page, name: str) -> Locator:
    """The value of one fact on a task's page (Attempts, Limit, Ran...)."""
    return page.locator(
        f"xpath=//dl[contains(@class,'facts')]/dt[.='{name}']/following-sibling::dd[1]"
    )


def bar_fill(bar: Locator) -> dict[str, float]:
    """How much of a progress bar each state fills, as shares of its width (0..1)."""
    return bar.evaluate(
        """(bar) => {
            const whole = bar.clientWidth;
            const fill = {};
            for (const seg of bar.querySelectorAll('.seg')) {
                const state = [...seg.classList].find((c) => c.startsWith('state-')).slice(6);
                fill[state] = (fill[state] || 0) + seg.getBoundingClientRect().width / whole;
            }
            return fill;
        }"""
    )
