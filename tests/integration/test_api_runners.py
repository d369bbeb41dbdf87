"""The runners view and why a task waits, through the API (fake clock: nothing waits)."""

from __future__ import annotations

from typing import Any

from stq.api.render import iso
from tests.integration import test_api_support as support
from tests.integration.test_api_support import T0, Api, workflow

api = support.api
make_api = support.make_api


def runners(api: Api) -> dict[str, dict[str, Any]]:
    result = api.get("/api/v1/runners")
    assert result.status_code == 200, result.text
    return {r["name"]: r for r in result.json["runners"]}


def waits(api: Api, wid: str) -> dict[str, Any]:
    tasks = api.get(f"/api/v1/workflows/{wid}").json["tasks"]
    return {t["name"]: t["waiting_for"] for t in tasks}


def test_no_runner_heard_from_lists_none(api: Api) -> None:
    assert api.get("/api/v1/runners").json == {"runners": []}


def test_runners_are_listed_idle_busy_then_gone(make_api: support.MakeApi) -> None:
    api = make_api(hb_timeout=30)
    api.submit(workflow(a={}))
    assert api.claim("idle-one", labels=["gpu", "big"]) is not None
    # ...that one is busy now; a second runner finds nothing and is idle
    assert api.claim("idle-two", labels=["cpu"]) is None
    seen = runners(api)
    busy, idle = seen["idle-one"], seen["idle-two"]
    assert busy["state"] == "busy" and busy["labels"] == ["big", "gpu"]
    assert busy["attempt_id"] and busy["task_id"] and busy["last_seen"] == iso(T0)
    assert idle == {
        "name": "idle-two",
        "labels": ["cpu"],
        "state": "idle",
        "attempt_id": None,
        "task_id": None,
        "last_seen": iso(T0),
    }
    api.clock.advance(20)
    api.post(f"/api/v1/attempts/{busy['attempt_id']}/heartbeat", {})
    api.clock.advance(15)  # the idle one: past the heartbeat timeout, unheard
    seen = runners(api)
    assert seen["idle-two"]["state"] == "gone"
    assert seen["idle-one"]["state"] == "busy" and seen["idle-one"]["last_seen"] == iso(T0 + 20)
    api.report(busy["attempt_id"])
    assert runners(api)["idle-one"]["state"] == "idle"
    api.clock.advance(600)
    assert runners(api) == {}  # not heard from for ten minutes: no longer listed


def test_a_todo_task_says_what_it_waits_for(api: Api) -> None:
    upstream = {f"u{i:02}": {} for i in range(23)}
    doc = workflow(
        **upstream,
        fan_in={"depends_on": list(upstream)},
        gpu={"labels": ["gpu"]},
        plain={},
    )
    wid = api.submit(doc)["id"]
    got = waits(api, wid)
    assert got["fan_in"] == {
        "kind": "dependencies",
        "tasks": [f"u{i:02}" for i in range(20)],
        "more": 3,
    }
    assert got["gpu"] == {"kind": "labels", "labels": ["gpu"]}  # no runner has that label
    assert got["plain"] == {"kind": "runner"}
    claim = api.claim("r1")
    assert claim is not None
    got = waits(api, wid)
    assert got[claim["task_name"]] is None  # in process: it waits for nothing
    assert got["gpu"] == {"kind": "labels", "labels": ["gpu"]}  # r1 has no gpu label
    api.claim("g1", labels=["gpu"])  # takes a task (any fits) and is heard from
    assert waits(api, wid)["gpu"] in ({"kind": "runner"}, None)


def test_unfinished_dependencies_only_are_named(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={}, c={"depends_on": ["a", "b"]}))["id"]
    first = api.claim()
    assert first is not None
    api.report(first["attempt_id"])
    assert waits(api, wid)["c"] == {"kind": "dependencies", "tasks": ["b"], "more": 0}


def test_a_retry_delay_says_until_when(api: Api) -> None:
    wid = api.submit(workflow(a={"max_attempts": 2, "retry_delay": "30s"}))["id"]
    claim = api.claim()
    assert claim is not None
    api.report(claim["attempt_id"], status="failed")
    assert waits(api, wid)["a"] == {"kind": "retry_delay", "until": iso(T0 + 30)}
    task = api.task(claim["task_id"])
    assert task["waiting_for"] == {"kind": "retry_delay", "until": iso(T0 + 30)}
    api.clock.advance(30)
    assert waits(api, wid)["a"] == {"kind": "runner"}


def test_listed_tasks_carry_their_wait_too(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={"depends_on": ["a"]}))["id"]
    listed = api.get("/api/v1/tasks", params={"workflow": wid}).json["tasks"]
    assert [t["waiting_for"] for t in listed] == [
        {"kind": "runner"},
        {"kind": "dependencies", "tasks": ["a"], "more": 0},
    ]
