"""Workflows and tasks through the API on a real SQLite file: submit, read, list, cancel,
retry, delete, and every status code of those endpoints."""

from __future__ import annotations

import re

from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_submit_answers_201_with_ids_and_states(api: Api) -> None:
    result = api.post("/api/v1/workflows", workflow(a={}, b={"depends_on": ["a"]}))
    assert result.status_code == 201
    body = result.json
    assert set(body) == {"id", "name", "state", "tasks"}
    assert body["name"] == "wf" and body["state"] == "running"
    assert [(t["name"], t["state"]) for t in body["tasks"]] == [("a", "todo"), ("b", "todo")]
    assert all(isinstance(t["id"], str) for t in body["tasks"])
    assert isinstance(body["id"], str)


def test_get_workflow_has_every_task_and_iso_times(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={"depends_on": ["a"]}))["id"]
    body = api.get(f"/api/v1/workflows/{wid}").json
    assert {"id", "name", "description", "state", "created", "finished", "counts", "tasks"} <= set(
        body
    )
    assert ISO_Z.match(body["created"]) and body["created"].startswith("2027-01-15T")
    assert body["finished"] is None
    assert body["counts"] == {"todo": 2, "in_process": 0, "completed": 0, "failed": 0}
    task_b = body["tasks"][1]
    assert task_b["depends_on"] == ["a"] and task_b["reason"] is None
    assert task_b["attempts_used"] == 0 and task_b["workflow_id"] == wid


def test_get_workflow_without_tasks_is_its_summary(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={"depends_on": ["a"]}))["id"]
    full = api.get(f"/api/v1/workflows/{wid}").json
    summary = api.get(f"/api/v1/workflows/{wid}?tasks=false").json
    assert "tasks" not in summary
    assert summary == {k: v for k, v in full.items() if k not in ("tasks", "time_left")}
    assert api.get(f"/api/v1/workflows/{wid}?tasks=true").json == full
    assert api.get(f"/api/v1/workflows/{wid}?tasks=maybe").status_code == 400


def test_invalid_document_is_422_with_path_and_message(api: Api) -> None:
    result = api.post("/api/v1/workflows", {"name": "wf", "tasks": {"a": {"comand": "x"}}})
    assert result.status_code == 422
    error = result.json["error"]
    assert error["code"] == "invalid_workflow" and error["message"]
    assert error["details"] and all({"path", "message"} <= set(d) for d in error["details"])
    cycle = workflow(a={"depends_on": ["b"]}, b={"depends_on": ["a"]})
    result = api.post("/api/v1/workflows", cycle)
    assert result.status_code == 422
    assert "->" in result.json["error"]["message"]
    assert api.get("/api/v1/workflows").json == {"workflows": []}  # nothing stored


def test_malformed_json_and_empty_body_are_400(api: Api) -> None:
    for body in ("{not json", "", "\xff"):
        result = api.call(
            "POST", "/api/v1/workflows", body=body, headers={"Content-Type": "application/json"}
        )
        assert result.status_code == 400, body
        assert result.json["error"]["code"] == "bad_request"


def test_list_is_newest_first_and_pages_with_before(api: Api) -> None:
    ids = []
    for i in range(5):
        ids.append(api.submit(workflow(f"wf{i}", a={}))["id"])
        api.clock.advance(1)
    page1 = api.get("/api/v1/workflows", params={"limit": 2}).json["workflows"]
    assert [w["id"] for w in page1] == ids[::-1][:2]
    assert page1[0]["counts"]["todo"] == 1
    page2 = api.get("/api/v1/workflows", params={"limit": 2, "before": page1[-1]["id"]}).json
    assert [w["id"] for w in page2["workflows"]] == ids[::-1][2:4]
    assert "tasks" not in page1[0]


def test_list_filters_by_state_and_rejects_bad_params(api: Api) -> None:
    older = api.submit(workflow("older", a={}))["id"]
    newer = api.submit(workflow("newer", a={}))["id"]
    api.report(api.claim()["attempt_id"])  # the older workflow's task is claimed first
    done = api.get("/api/v1/workflows", params={"state": "completed"}).json["workflows"]
    assert [w["id"] for w in done] == [older]
    running = api.get("/api/v1/workflows", params={"state": "running"}).json["workflows"]
    assert [w["id"] for w in running] == [newer]
    bad = {"state": "nope"}, {"limit": "0"}, {"limit": "x"}, {"limit": "5000"}, {"limit": "2.5"}
    bad += ({"limit": ""},)  # given but empty: not a number either
    for params in bad:
        result = api.get("/api/v1/workflows", params=params)
        assert result.status_code == 400, params
        assert result.json["error"]["code"] == "bad_request"
        ((name, value),) = params.items()
        (detail,) = result.json["error"]["details"]
        assert detail["path"] == name and repr(value) in detail["message"]
    assert api.get("/api/v1/workflows", params={"limit": "1"}).json["workflows"] == running


def test_tasks_filter_by_state_and_workflow(api: Api) -> None:
    w1 = api.submit(workflow("one", a={}, b={}))["id"]
    w2 = api.submit(workflow("two", c={}))["id"]
    api.claim()
    in_process = api.get("/api/v1/tasks", params={"state": "in_process"}).json["tasks"]
    assert [t["name"] for t in in_process] == ["a"]
    assert [
        t["name"] for t in api.get("/api/v1/tasks", params={"workflow": w2}).json["tasks"]
    ] == ["c"]
    todo_w1 = api.get("/api/v1/tasks", params={"workflow": w1, "state": "todo"}).json["tasks"]
    assert [t["name"] for t in todo_w1] == ["b"]
    assert api.get("/api/v1/tasks", params={"state": "bad"}).status_code == 400


def test_unknown_ids_are_404_with_the_error_body(api: Api) -> None:
    for method, path in [
        ("GET", "/api/v1/workflows/nope"),
        ("DELETE", "/api/v1/workflows/nope"),
        ("POST", "/api/v1/workflows/nope/cancel"),
        ("POST", "/api/v1/workflows/nope/retry"),
        ("GET", "/api/v1/tasks/nope"),
        ("GET", "/api/v1/attempts/nope/output"),
    ]:
        result = api.call(method, path)
        assert result.status_code == 404, path
        assert result.json["error"]["code"] == "not_found"
        assert set(result.json["error"]) == {"code", "message", "details"}


def test_cancel_fails_open_tasks_and_delete_needs_a_terminal_workflow(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={"depends_on": ["a"]}))["id"]
    attempt = api.claim()
    result = api.call("DELETE", f"/api/v1/workflows/{wid}")
    assert result.status_code == 409 and result.json["error"]["code"] == "conflict"
    cancelled = api.post(f"/api/v1/workflows/{wid}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json["state"] == "failed"
    assert {t["reason"] for t in cancelled.json["tasks"]} == {"cancelled"}
    beat = api.post(f"/api/v1/attempts/{attempt['attempt_id']}/heartbeat", {})
    assert beat.json == {"cancel": True}
    late = api.post(f"/api/v1/attempts/{attempt['attempt_id']}/result", {"status": "completed"})
    assert late.status_code == 409 and late.json["error"]["code"] == "conflict"
    assert api.call("DELETE", f"/api/v1/workflows/{wid}").status_code == 200
    assert api.get(f"/api/v1/workflows/{wid}").status_code == 404
    assert api.get(f"/api/v1/tasks/{attempt['task_id']}").status_code == 404


def test_retry_puts_failed_tasks_back_and_keeps_history(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={"depends_on": ["a"]}))["id"]
    first = api.claim()
    assert api.report(first["attempt_id"], "failed") == {
        "attempt_status": "failed",
        "task_state": "failed",
    }
    body = api.get(f"/api/v1/workflows/{wid}").json
    assert body["state"] == "failed" and body["tasks"][1]["reason"] == "upstream_failed"
    assert api.task(first["task_id"])["attempts_this_round"] == 1
    retried = api.post(f"/api/v1/workflows/{wid}/retry").json
    assert [t["state"] for t in retried["tasks"]] == ["todo", "todo"]
    # a fresh budget: no attempt this round yet, one in all
    assert [(t["attempts_this_round"], t["attempts_used"]) for t in retried["tasks"]] == [
        (0, 1),
        (0, 0),
    ]
    second = api.claim()
    assert second["task_id"] == first["task_id"] and second["attempt_number"] == 2
    task = api.task(first["task_id"])
    assert [a["number"] for a in task["attempts"]] == [1, 2]
    assert task["attempts"][0]["status"] == "failed"
    assert (task["attempts_this_round"], task["attempts_used"]) == (1, 2)


def test_a_filter_given_twice_is_refused(api: Api) -> None:
    api.submit(workflow(a={}))
    twice = api.get("/api/v1/tasks", query_string="state=bogus&state=todo")
    assert twice.status_code == 400 and twice.json["error"]["details"][0]["path"] == "state"
    assert api.get("/api/v1/tasks", query_string="state=todo").status_code == 200
