"""Script and markup in anything a user controls comes back as JSON, never as HTML.

The XSS strings of the dashboard issue go into every field a submitter or a
runner controls, and into ids and paths that error messages echo back.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from falcon import testing

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "</textarea><iframe src=//evil>",
]


def _json(result: testing.Result) -> object:
    assert result.headers["content-type"].startswith("application/json"), result.headers
    assert "text/html" not in result.headers["content-type"]
    return json.loads(result.text)  # the whole body parses as JSON: no HTML around it


@pytest.mark.parametrize("payload", XSS)
def test_user_text_stays_json(secured: testing.TestClient, auth, payload: str) -> None:
    flow = {
        "name": "xss",
        "description": payload,
        "tasks": {"t": {"command": payload, "env": {"X": payload}, "labels": []}},
    }
    wf = _json(secured.simulate_post("/api/v1/workflows", json=flow, headers=auth))
    assert (
        _json(secured.simulate_get(f"/api/v1/workflows/{wf['id']}", headers=auth))["description"]
        == payload
    )
    _json(secured.simulate_get("/api/v1/workflows", headers=auth))
    claim = _json(
        secured.simulate_post(
            "/api/v1/attempts/claim", json={"runner": payload, "labels": []}, headers=auth
        )
    )
    assert claim["command"] == payload
    body = {"status": "failed", "exit_code": 1, "output": payload, "message": payload}
    path = f"/api/v1/attempts/{claim['attempt_id']}/result"
    _json(secured.simulate_post(path, json=body, headers=auth))
    task = _json(secured.simulate_get(f"/api/v1/tasks/{claim['task_id']}", headers=auth))
    assert task["attempts"][0]["runner"] == payload
    out = secured.simulate_get(f"/api/v1/attempts/{claim['attempt_id']}/output", headers=auth)
    assert out.headers["content-type"].startswith("text/plain")
    assert out.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("payload", XSS)
def test_echoed_ids_and_bad_documents_stay_json(secured, auth, payload: str) -> None:
    for path in (
        f"/api/v1/workflows/{quote(payload, safe='')}",
        f"/api/v1/tasks/{quote(payload, safe='')}",
        f"/api/v1/tasks?workflow={quote(payload, safe='')}",
        f"/api/v1/nothing/{quote(payload, safe='')}",
    ):
        assert "error" in _json(secured.simulate_get(path, headers=auth)), path
    bad = {"name": payload, "tasks": {payload: {"command": "true", "depends_on": [payload]}}}
    error = _json(secured.simulate_post("/api/v1/workflows", json=bad, headers=auth))
    assert error["error"]["code"] == "invalid_workflow"
    not_json = secured.simulate_post(
        "/api/v1/workflows", body=payload, headers={**auth, "Content-Type": "text/html"}
    )
    assert not_json.status_code in (400, 415, 422) and "error" in _json(not_json)
