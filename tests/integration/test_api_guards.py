"""Token auth matrix, the 16 MiB body limit (declared, chunked and lying lengths),
falcon's own errors in STQ's body, and the dashboard's static files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import falcon
import pytest
from falcon import testing

from stq.settings import MAX_BODY_BYTES
from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api

BIG = 20 * 1024 * 1024
#: What a 413 says, declared or chunked: the one wording of the body limit.
OVER = {
    "code": "payload_too_large",
    "message": f"The request body is over the {MAX_BODY_BYTES} byte limit.",
    "details": [],
}
JSON = {"Content-Type": "application/json"}
PROTECTED = [
    ("GET", "/api/v1/workflows"),
    ("POST", "/api/v1/workflows"),
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/attempts/claim"),
    ("GET", "/metrics"),
]
EXEMPT = ["/api/v1/health", "/", "/dashboard/core.js", "/api/v1/openapi.json"]


@pytest.mark.parametrize(
    ("server_token", "sent", "allowed"),
    [(None, None, True), (None, "x", True), ("s3cret", None, False),
     ("s3cret", "wrong", False), ("s3cret", "s3cre", False), ("s3cret", "s3cret", True)],
)  # fmt: skip
def test_auth_matrix(
    make_api: support.MakeApi, server_token: str | None, sent: str | None, allowed: bool
) -> None:
    api = make_api(token=server_token, send=sent)
    for method, path in PROTECTED:
        body = {"runner": "r"} if path.endswith("claim") else None
        result = api.post(path, body) if method == "POST" else api.get(path)
        if allowed:
            assert result.status_code != 401, path
        else:
            assert result.status_code == 401, path
            assert result.json["error"]["code"] == "unauthorized"
            assert "Bearer" in result.json["error"]["message"]
            assert result.headers["www-authenticate"] == "Bearer"
    for path in EXEMPT:
        assert api.get(path).status_code == 200, path


def test_wrong_scheme_is_refused(make_api: support.MakeApi) -> None:
    api = make_api(token="s3cret")
    result = api.get("/api/v1/workflows", headers={"Authorization": "Basic s3cret"})
    assert result.status_code == 401


def test_a_declared_20_mib_body_is_413(api: Api) -> None:
    body = b'{"name": "' + b"x" * BIG + b'"}'
    result = api.call("POST", "/api/v1/workflows", body=body)
    assert result.status_code == 413
    assert result.json["error"] == OVER


class CountingStream(io.RawIOBase):
    """An endless-looking input that counts what the server read from it."""

    def __init__(self, size: int):
        self.left, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = b" " * n
        self.left -= n
        self.read_bytes += n
        return n


def _raw_call(app: falcon.App, env: dict) -> tuple[str, bytes]:
    answer: list[str] = []
    chunks = app(env, lambda status, headers, exc_info=None: answer.append(status))
    return answer[0], b"".join(chunks)


def _env(stream: CountingStream, length: str | None) -> dict:
    env = testing.create_environ(method="POST", path="/api/v1/workflows")
    env["wsgi.input"] = io.BufferedReader(stream)
    env["CONTENT_TYPE"] = "application/json"
    env.pop("CONTENT_LENGTH", None)
    if length is None:
        env["wsgi.input_terminated"] = True
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        env["CONTENT_LENGTH"] = length
    return env


def test_a_chunked_20_mib_body_is_413_before_it_is_read_whole(api: Api) -> None:
    stream = CountingStream(BIG)
    status, body = _raw_call(api.client.app, _env(stream, None))
    assert status.startswith("413")
    assert json.loads(body)["error"] == OVER
    assert stream.read_bytes < 17 * 1024 * 1024


def test_a_lying_content_length_reads_only_what_it_declares(api: Api) -> None:
    stream = CountingStream(BIG)
    status, body = _raw_call(api.client.app, _env(stream, "10"))
    assert status.startswith("400")  # ten spaces are not a document
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert stream.read_bytes <= 64 * 1024
    status, _ = _raw_call(api.client.app, _env(CountingStream(BIG), str(BIG)))
    assert status.startswith("413")


def test_unknown_route_and_method_get_the_error_body(api: Api) -> None:
    missing = api.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert missing.json["error"]["message"] == "No such resource."
    assert missing.headers["content-type"].startswith("application/json")
    wrong = api.call("PUT", "/api/v1/workflows")
    assert wrong.status_code == 405
    assert wrong.json["error"]["code"] == "method_not_allowed"
    assert wrong.json["error"]["message"] == "That method is not allowed on this path."


def test_an_unexpected_exception_is_a_500_json_body(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(api.store, "list_tasks", boom)
    result = api.get("/api/v1/tasks")
    assert result.status_code == 500
    assert result.json["error"]["code"] == "internal"
    assert "kaboom" not in result.text  # no internals leak to clients
    assert "kaboom" in caplog.text  # but the traceback is logged


def test_dashboard_files_are_served_with_their_types(api: Api) -> None:
    index = api.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert b"<html" in index.content.lower()
    js = api.get("/dashboard/core.js")
    assert js.headers["content-type"].startswith("text/javascript")
    css = api.get("/dashboard/dashboard.css")
    assert css.headers["content-type"].startswith("text/css")
    for name in ("nope.js", "..%2Fapplication.py", ".hidden.js", "..", "application.py"):
        result = api.get(f"/dashboard/{name}")
        assert result.status_code == 404, name
        assert result.json["error"]["code"] == "not_found"


def test_health_and_metrics(api: Api) -> None:
    assert api.get("/api/v1/health").json == {"ok": True}
    api.submit(workflow(a={}, b={}))
    api.report(api.claim()["attempt_id"])
    metrics = api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'stq_tasks{state="todo"} 1' in text
    assert 'stq_tasks{state="completed"} 1' in text
    assert 'stq_attempts{status="completed"} 1' in text
    assert "stq_claim_latency_seconds_count 1" in text
    assert 'stq_claim_latency_seconds_bucket{le="+Inf"} 1' in text


def test_claims_made_with_a_result_count_in_the_claim_latency(api: Api) -> None:
    api.submit(workflow(a={}, b={}))
    first = api.claim()
    assert first is not None
    body = {"status": "completed", "exit_code": 0, "next": {"runner": "r1"}}
    answer = api.post(f"/api/v1/attempts/{first['attempt_id']}/result", body)
    assert answer.json["next"]["task_name"] == "b"
    assert "stq_claim_latency_seconds_count 2" in api.get("/metrics").text


def test_health_is_503_when_the_store_cannot_open(tmp_path: Path) -> None:
    from stq.api.application import create_app
    from stq.settings import Settings

    app = create_app(Settings(db=str(tmp_path)))  # a directory is no database
    result = testing.TestClient(app).simulate_get("/api/v1/health")
    assert result.status_code == 503
    assert result.json["error"]["code"] == "store_unavailable"


CLAIM = "/api/v1/attempts/claim"


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        (CLAIM, '{"runner": "r", "wait": NaN}', "NaN is not a JSON number"),
        (CLAIM, '{"runner": "r", "wait": Infinity}', "Infinity is not a JSON number"),
        (CLAIM, '{"runner": "r", "wait": 1e400}', "out of range"),
        (CLAIM, '{"runner": "\\ud800x"}', "surrogate"),
        ("/api/v1/workflows", '{"name": "w", "description": "\\udc00", "tasks": {}}', "surrogate"),
        (CLAIM, "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_cannot_be_acted_on_is_a_400(api: Api, path: str, body: str, says: str) -> None:
    """A NaN wait would never end, a lone surrogate cannot be stored: refused up front."""
    result = api.call("POST", path, body=body, headers=JSON)
    assert result.status_code == 400, result.text
    assert says in result.json["error"]["message"]
    assert api.get("/api/v1/workflows").json["workflows"] == []


def test_an_escaped_surrogate_pair_is_a_character(api: Api) -> None:
    body = '{"name": "w", "description": "\\ud83d\\ude00", "tasks": {"a": {"command": "true"}}}'
    result = api.call("POST", "/api/v1/workflows", body=body, headers=JSON)
    assert result.status_code == 201, result.text
    assert api.get(f"/api/v1/workflows/{result.json['id']}").json["description"] == "\U0001f600"


@pytest.mark.parametrize("exit_code", [2**63, -(2**63) - 1])
def test_an_exit_code_past_64_bits_is_a_400(api: Api, exit_code: int) -> None:
    api.submit(workflow(a={}))
    claim = api.claim()
    assert claim is not None
    body = {"status": "failed", "exit_code": exit_code}
    result = api.post(f"/api/v1/attempts/{claim['attempt_id']}/result", body)
    assert result.status_code == 400, result.text
    assert api.task(claim["task_id"])["state"] == "in_process"


@pytest.mark.parametrize(
    ("body", "path", "key"),
    [
        ('{"name": "w", "tasks": {"a": {"command": "x"}, "a": {"command": "y"}}}', "/tasks", "a"),
        ('{"name": "w", "name": "v", "tasks": {"a": {"command": "x"}}}', "", "name"),
        ('{"name": "w", "tasks": {"a": {"command": "x", "env": {"E": "1", "E": "2"}}}}',
         "/tasks/a/env", "E"),
    ],
)  # fmt: skip
def test_a_duplicate_key_in_a_json_workflow_is_a_422(
    api: Api, body: str, path: str, key: str
) -> None:
    """A duplicate key at any level rejects the document, JSON as well as YAML."""
    result = api.call("POST", "/api/v1/workflows", body=body, headers=JSON)
    assert result.status_code == 422, result.text
    assert result.json["error"]["details"] == [{"path": path, "message": f"duplicate key {key!r}"}]
    assert api.get("/api/v1/workflows").json["workflows"] == []


def test_head_answers_as_get_without_the_body(api: Api) -> None:
    wid = api.submit(workflow(a={}))["id"]
    claim = api.claim()
    assert claim is not None
    api.report(claim["attempt_id"], output="hello\n")
    paths = [
        "/api/v1/workflows", f"/api/v1/workflows/{wid}", "/api/v1/tasks",
        f"/api/v1/tasks/{claim['task_id']}", f"/api/v1/attempts/{claim['attempt_id']}/output",
        "/api/v1/health", "/api/v1/openapi.json", "/metrics", "/", "/dashboard/core.js",
        "/api/v1/workflows/nope",
    ]  # fmt: skip
    for path in paths:
        got, head = api.get(path), api.call("HEAD", path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers["content-length"] == str(len(got.content)), path
    assert api.call("HEAD", "/api/v1/attempts/claim").status_code == 405


def test_head_of_public_paths_needs_no_token(make_api: support.MakeApi) -> None:
    api = make_api(token="s3cret")
    for path in EXEMPT:
        assert api.call("HEAD", path).status_code == 200, path
    assert api.call("HEAD", "/api/v1/workflows").status_code == 401
