"""``time_left`` on a workflow read with its tasks: the server's one estimate.

Through the API with a real SQLite file and a fake clock (see test_api_support).
"""

from __future__ import annotations

from typing import Any

from stq.api.openapi import document
from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api


def read(api: Api, workflow_id: str, **params: Any) -> dict[str, Any]:
    got = api.get(f"/api/v1/workflows/{workflow_id}", params=params)
    assert got.status_code == 200, got.text
    return got.json


def test_time_left_follows_the_critical_path_as_tasks_run(api: Api) -> None:
    doc = workflow(
        a={"duration": 90},
        b={"duration": 45, "depends_on": ["a"]},
        c={"duration": 30},
    )
    wid = api.submit(doc)["id"]
    assert read(api, wid)["time_left"] == 90 + 45

    claim = api.claim()
    assert claim is not None and claim["task_name"] == "a"
    api.clock.advance(30.4)
    assert read(api, wid)["time_left"] == 60 + 45  # 59.6 s of a left, rounded up

    api.report(claim["attempt_id"])
    assert read(api, wid)["time_left"] == 45
    for _ in range(2):
        claim = api.claim()
        assert claim is not None
        api.report(claim["attempt_id"])
    finished = read(api, wid)
    assert finished["state"] == "completed" and finished["time_left"] is None


def test_undeclared_durations_take_the_median_of_what_ran(api: Api) -> None:
    wid = api.submit(workflow(a={}, b={}, c={}, d={"depends_on": ["a", "b", "c"]}))["id"]
    assert read(api, wid)["time_left"] is None  # nothing declared, nothing ran yet
    for seconds in (10, 40):
        claim = api.claim()
        assert claim is not None
        api.clock.advance(seconds)
        api.report(claim["attempt_id"])
    assert read(api, wid)["time_left"] == 25 + 25  # c, then d, at the median of 10 and 40


def test_only_answers_with_tasks_carry_it(api: Api) -> None:
    wid = api.submit(workflow(a={"duration": 12}))["id"]
    assert "time_left" not in read(api, wid, tasks="false")
    listed = api.get("/api/v1/workflows").json["workflows"]
    assert [w["id"] for w in listed] == [wid] and "time_left" not in listed[0]
    cancelled = api.post(f"/api/v1/workflows/{wid}/cancel")
    assert cancelled.json["time_left"] is None
    retried = api.post(f"/api/v1/workflows/{wid}/retry")
    assert retried.json["state"] == "running" and retried.json["time_left"] == 12


def test_the_openapi_document_describes_it() -> None:
    field = document()["components"]["schemas"]["Workflow"]["properties"]["time_left"]
    assert field["type"] == ["integer", "null"]
