"""No edge of the graph is drawn across a box it does not join, checked on the drawn SVG."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import edges, open_view
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
#: Each task's dependencies: layers 0..5, with edges that skip one to four layers,
#: so that laid out in rows, several would run straight through a box between.
PIPELINE = {
    "checkout": [],
    "lint": ["checkout"],
    "unit-test": ["checkout"],
    "build": ["lint", "unit-test"],
    "perf-test": ["build"],
    "publish-docs": ["checkout"],
    "package": ["build"],
    "deploy": ["perf-test", "publish-docs", "checkout", "package"],
    "notify": ["deploy", "lint"],
    "smoke": ["deploy", "checkout"],
}
#: The sampled points of a path may touch a box's edge by rounding: not a crossing.
INSET = 1.0


def crossings(page: Page) -> list[str]:
    """Each edge that passes through a box other than its two ends, sampled every 2 px."""
    return page.evaluate(
        """(inset) => {
            const boxes = [...document.querySelectorAll('svg.dag g.node')].map((g) => {
                const at = g.transform.baseVal.consolidate().matrix;
                const rect = g.querySelector('rect.box');
                return { name: g.dataset.task, x: at.e, y: at.f,
                         w: rect.width.baseVal.value, h: rect.height.baseVal.value };
            });
            const found = [];
            for (const path of document.querySelectorAll('svg.dag .edges path')) {
                const ends = [path.dataset.from, path.dataset.to];
                const others = boxes.filter((b) => !ends.includes(b.name));
                for (let l = 0; l <= path.getTotalLength(); l += 2) {
                    const p = path.getPointAtLength(l);
                    const hit = others.find((b) => p.x > b.x + inset && p.x < b.x + b.w - inset
                                               && p.y > b.y + inset && p.y < b.y + b.h - inset);
                    if (hit) {
                        found.push(`${ends.join(' -> ')} crosses ${hit.name}`);
                        break;
                    }
                }
            }
            return found;
        }""",
        INSET,
    )


def test_no_edge_crosses_a_box_it_does_not_join(
    watched: Watched, server: LiveServer, submit: Any
) -> None:
    page = watched.page
    tasks = {name: {"command": "true", "depends_on": deps} for name, deps in PIPELINE.items()}
    workflow_id = submit({"name": "skipping-edges", "tasks": tasks})
    open_view(page, server.url, f"/workflows/{workflow_id}")
    expect(page.locator("svg.dag g.node.task")).to_have_count(len(PIPELINE))
    assert edges(page) == {(dep, name) for name, deps in PIPELINE.items() for dep in deps}
    assert crossings(page) == []
    watched.shot("graph_edges_around_boxes")
