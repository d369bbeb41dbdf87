"""What a workflow declares beyond commands: skipped tasks, run_if, descriptions, matrix, params.

Workflows are submitted as JSON documents through the API, as a script would.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import (
    SEEN_WITHIN_MS,
    bar_fill,
    box_look,
    cell,
    edge_classes,
    fact,
    node_states,
    open_view,
    wait_node_state,
)
from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"


def with_failure_branch(name: str) -> dict[str, Any]:
    """build -> notify (on failure) and tests (on success); cleanup always runs last."""
    return {
        "name": name,
        "tasks": {
            "build": {"command": "make"},
            "notify": {"command": "./notify.sh", "depends_on": ["build"], "run_if": "on_failure"},
            "tests": {"command": "make test", "depends_on": ["build"]},
            "cleanup": {
                "command": "rm -rf build",
                "depends_on": ["notify", "tests"],
                "run_if": "always",
            },
        },
    }


def test_a_skipped_task_is_drawn_apart_from_completed_and_failed_ones(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(with_failure_branch("skips"))
    tasks = api.tasks(workflow_id)
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "notify", "todo")
    expect(page.locator("g.node.task[data-task=notify] text.sub")).to_have_text(
        "to do · runs on failure"
    )
    expect(cell(page, "todo", tasks["notify"]["id"], "Task").locator(".run-if")).to_have_text(
        "runs on failure"
    )
    expect(cell(page, "todo", tasks["tests"]["id"], "Task").locator(".run-if")).to_have_count(0)
    assert edge_classes(page)[("notify", "cleanup")] == "run-if-always"
    assert edge_classes(page)[("build", "notify")] == "run-if-on_failure"

    api.run_next(0)  # build completed: notify is skipped, never claimed
    assert api.run_next(0)["task_name"] == "tests"
    assert api.run_next(0)["task_name"] == "cleanup"
    assert api.tasks(workflow_id)["notify"]["reason"] == "skipped"
    wait_node_state(page, "notify", "skipped")
    wait_node_state(page, "cleanup", "completed")
    assert node_states(page) == {
        "build": "completed",
        "notify": "skipped",
        "tests": "completed",
        "cleanup": "completed",
    }
    expect(page.locator("g.node.task[data-task=notify] text.sub")).to_have_text(
        "skipped · never ran"
    )
    skipped, completed = box_look(page, "notify"), box_look(page, "build")
    assert skipped["fill"] != completed["fill"] and skipped["dashes"] != completed["dashes"]
    assert edge_classes(page)[("build", "notify")] == "to-skipped"
    assert edge_classes(page)[("build", "tests")] == ""

    summary = page.locator(".summary")
    expect(summary.locator(".counts")).to_have_text("4/4 done · 1 skipped")
    assert bar_fill(summary.locator(".progress")) == pytest.approx(
        {"completed": 0.75, "skipped": 0.25}, abs=0.02
    )
    expect(page.locator("details.tasks[data-state=completed] summary")).to_have_text(
        re.compile(r"^Completed 4\s*\(1 skipped\)$")
    )
    notify = cell(page, "completed", tasks["notify"]["id"], "Task")
    expect(notify.locator(".badge")).to_have_text("Skipped")
    build = cell(page, "completed", tasks["build"]["id"], "Task")
    expect(build.locator(".badge")).to_have_count(0)
    expect(cell(page, "completed", tasks["notify"]["id"], "Ran")).to_have_text("")
    watched.shot("skipped_workflow")

    page.locator("g.node.task[data-task=notify]").click()
    head = page.locator(".view.task .view-head")
    expect(head.locator(".badge")).to_have_text("Skipped")
    expect(head.locator(".badge")).to_have_class(re.compile(r"\bstate-skipped\b"))
    expect(head.locator(".reason")).to_contain_text("never ran")
    expect(fact(page, "Runs")).to_contain_text("on failure")
    expect(page.locator(".view.task tbody tr")).to_have_count(0)
    watched.shot("skipped_task")


def test_a_failure_branch_that_ran_is_drawn_as_completed_and_upstream_failed_stays(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    workflow_id = submit(with_failure_branch("failure-branch"))
    api.run_next(1)  # build failed: tests upstream failed, notify runs, then cleanup
    assert api.run_next(0)["task_name"] == "notify"
    assert api.run_next(0)["task_name"] == "cleanup"
    open_view(page, server.url, f"/workflows/{workflow_id}")
    wait_node_state(page, "cleanup", "completed")
    assert node_states(page) == {
        "build": "failed",
        "notify": "completed",
        "tests": "failed",
        "cleanup": "completed",
    }
    expect(page.locator("g.node.task[data-task=tests] text.sub")).to_have_text("upstream failed")
    expect(page.locator(".summary .counts")).to_have_text("4/4 done · 2 failed")
    assert edge_classes(page)[("build", "notify")] == "run-if-on_failure"
    expect(page.locator("details.tasks .badge.state-skipped")).to_have_count(0)


def declared(name: str) -> dict[str, Any]:
    long = "Unit tests on every Python we support, " + "with coverage " * 20 + XSS
    return {
        "name": name,
        "params": {"BRANCH": "main", "DAY": "2026-12-06"},
        "tasks": {
            "test": {
                "description": long,
                "command": 'tox -e "py$PY"',
                "matrix": {"PY": ["311", "312"], "OS": ["linux"]},
            },
            "package": {
                "description": "Build the wheel",
                "command": "make dist",
                "depends_on": ["test"],
            },
        },
    }


def test_descriptions_matrix_values_and_params_are_shown(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    doc = declared("declared")
    long = doc["tasks"]["test"]["description"]
    workflow_id = submit(doc)
    tasks = api.tasks(workflow_id)
    assert set(tasks) == {"test-311-linux", "test-312-linux", "package"}
    open_view(page, server.url, f"/workflows/{workflow_id}")
    params = page.locator("p.params")
    expect(params).to_have_text("Params BRANCH=main DAY=2026-12-06")
    expect(params.locator("code.pair")).to_have_text(["BRANCH=main", "DAY=2026-12-06"])

    first = cell(page, "todo", tasks["test-311-linux"]["id"], "Task")
    desc = first.locator(".task-desc")
    expect(desc).to_have_attribute("title", long)  # the whole text on hover
    shown = desc.inner_text()
    assert shown.endswith("…") and len(shown) < len(long) and long.startswith(shown[:-1])
    expect(first.locator(".task-matrix")).to_have_text("test · PY=311 OS=linux")
    package = cell(page, "todo", tasks["package"]["id"], "Task")
    expect(package.locator(".task-desc")).to_have_text("Build the wheel")
    expect(package.locator(".task-matrix")).to_have_count(0)
    node_title = page.locator("svg.dag g.node.task[data-task='test-312-linux'] > title")
    expect(node_title).to_contain_text("test: PY=312 OS=linux")
    watched.shot("declared_workflow")

    first.locator("a").click()
    expect(page.locator("p.desc.task")).to_have_text(long)
    expect(fact(page, "Matrix")).to_have_text("PY=311 OS=linux")
    expect(fact(page, "Matrix task")).to_have_text("test")
    expect(fact(page, "Runs")).to_have_count(0)  # on_success, the default, goes unsaid
    assert page.locator("main img").count() == 0
    watched.shot("declared_task")

    page.goto(f"{server.url}/#/tasks/{tasks['package']['id']}")
    expect(page.locator("p.desc.task")).to_have_text("Build the wheel", timeout=SEEN_WITHIN_MS)
    expect(fact(page, "Matrix")).to_have_count(0)
