"""``POST /api/v1/workflows`` with an ``Idempotency-Key``, through the real app on a real
SQLite file: a repeat answers 200 with the first workflow, another body 409, a bad key 400,
and a deleted workflow's key (or one older than 24 h) creates again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from falcon import testing

from stq.store.base import IDEMPOTENCY_WINDOW
from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api

PATH = "/api/v1/workflows"


def post(api: Api, doc: dict[str, Any], key: str, raw: bytes | None = None) -> testing.Result:
    """A submit with ``key``; ``raw``: these exact bytes as the body instead of ``doc``."""
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    body = raw if raw is not None else json.dumps(doc).encode()
    return api.call("POST", PATH, body=body, headers=headers)


def count(api: Api) -> int:
    return len(api.get(PATH).json["workflows"])


def test_a_repeat_answers_200_with_the_first_workflow_as_first_answered(api: Api) -> None:
    doc = workflow(a={}, b={"depends_on": ["a"]})
    first = post(api, doc, "k-1")
    assert first.status_code == 201
    claim = api.claim()
    assert claim is not None
    again = post(api, doc, "k-1")
    assert again.status_code == 200
    assert again.headers["Location"] == first.headers["Location"]
    assert set(again.json) == set(first.json) == {"id", "name", "state", "tasks"}
    assert again.json["id"] == first.json["id"] and again.json["name"] == "wf"
    assert [t["id"] for t in again.json["tasks"]] == [t["id"] for t in first.json["tasks"]]
    assert [t["state"] for t in again.json["tasks"]] == ["in_process", "todo"]  # as it is now
    assert count(api) == 1


def test_the_same_key_with_another_body_is_409_and_stores_nothing(api: Api) -> None:
    raw = b'{"name": "wf", "tasks": {"a": {"command": "true"}}}'
    assert post(api, {}, "k-2", raw).status_code == 201
    for other in (raw.replace(b"true", b"false"), raw.replace(b": ", b":")):  # bytes count
        refused = post(api, {}, "k-2", other)
        assert refused.status_code == 409
        error = refused.json["error"]
        assert error["code"] == "conflict"
        assert "Idempotency-Key 'k-2'" in error["message"] and "new key" in error["message"]
    assert count(api) == 1


@pytest.mark.parametrize(
    "key",
    ["", "a b", "x" * 201, "tab\there", "caf\u00e9", "del\x7f"],
    ids=["empty", "space", "201-chars", "control", "non-ascii", "del"],
)
def test_a_key_that_is_not_1_to_200_visible_ascii_chars_is_400(api: Api, key: str) -> None:
    refused = post(api, workflow(a={}), key)
    assert refused.status_code == 400, refused.text
    error = refused.json["error"]
    assert error["code"] == "bad_request" and "Idempotency-Key" in error["message"]
    assert error["details"][0]["path"] == "Idempotency-Key"
    assert count(api) == 0


def test_keys_of_1_and_200_visible_chars_are_taken(api: Api) -> None:
    for key in ("!", "~" * 200, "".join(chr(c) for c in range(0x21, 0x7F))):
        assert post(api, workflow(a={}), key).status_code == 201
        assert post(api, workflow(a={}), key).status_code == 200
    assert count(api) == 3


def test_deleting_the_workflow_forgets_its_key(api: Api) -> None:
    doc = workflow(a={})
    first = post(api, doc, "k-3").json["id"]
    claim = api.claim()
    assert claim is not None
    api.report(claim["attempt_id"])
    assert api.call("DELETE", f"{PATH}/{first}").status_code == 200
    again = post(api, doc, "k-3")
    assert again.status_code == 201 and again.json["id"] != first


def test_a_key_older_than_24_hours_creates_again(api: Api) -> None:
    doc = workflow(a={})
    first = post(api, doc, "k-4").json["id"]
    api.clock.advance(IDEMPOTENCY_WINDOW)
    again = post(api, doc, "k-4")
    assert again.status_code == 201 and again.json["id"] != first
    assert post(api, doc, "k-4").json["id"] == again.json["id"]


def test_without_a_key_every_submit_creates(api: Api) -> None:
    api.submit(workflow(a={}))
    api.submit(workflow(a={}))
    assert count(api) == 2


def test_the_header_is_in_the_openapi_document(api: Api) -> None:
    post_op = api.get("/api/v1/openapi.json").json["paths"][PATH]["post"]
    (param,) = [p for p in post_op["parameters"] if p["name"] == "Idempotency-Key"]
    assert param["in"] == "header" and not param["required"]
    assert param["schema"]["maxLength"] == 200
    assert {"200", "201", "409"} <= set(post_op["responses"])
