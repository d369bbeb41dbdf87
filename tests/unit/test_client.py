"""The HTTP client against a real local HTTP server: errors, redirects, the token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from stq.errors import (
    ANSWERED,
    NotFound,
    NotStqServer,
    ServerUnreachable,
    UsageError,
    WorkflowInvalid,
)
from stq.worker import client as client_module
from stq.worker.client import Client, ServerError, ServerTimeout
from stq.worker.http_lite import AnswerTooLarge, ReadTimeout
from tests.helpers import free_port, http_server

#: path -> (status, body, extra headers) served by the fake server
ANSWERS: dict[str, tuple[int, object, dict[str, str]]] = {}
SEEN: list[tuple[str, str | None]] = []
#: A body that is never sent: the server holds the request until ``RELEASE`` is set.
SILENT = object()
RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        SEEN.append((self.path, self.headers.get("Authorization")))
        status, body, headers = ANSWERS.get(self.path, (404, {"error": {}}, {}))
        if body is SILENT:
            RELEASE.wait(10)
            return
        data = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with http_server(Handler) as url:
        yield url


@pytest.fixture
def url(server_url: str) -> Iterator[str]:
    ANSWERS.clear()
    SEEN.clear()
    RELEASE.clear()
    ANSWERS["/api/v1/health"] = (200, {"ok": True}, {})
    yield server_url
    RELEASE.set()


def error(code: str, message: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or []}}


@pytest.mark.parametrize(("status", "kind"), [(kind.http_status, kind) for kind in ANSWERED])
def test_error_answers_become_their_exceptions(url: str, status: int, kind: type) -> None:
    ANSWERS["/api/v1/workflows/w9"] = (status, error("x", "the server's words"), {})
    with pytest.raises(kind) as caught:
        Client(url).workflow("w9")
    if status == 401:
        assert "STQ_TOKEN" in caught.value.message
    else:
        assert caught.value.message == "the server's words"


def test_invalid_workflow_keeps_details(url: str) -> None:
    details = [{"path": "/tasks/a", "message": "bad"}]
    ANSWERS["/api/v1/workflows"] = (422, error("invalid_workflow", "invalid", details), {})
    with pytest.raises(WorkflowInvalid) as caught:
        Client(url).submit({"name": "x", "tasks": {}})
    assert caught.value.problems[0].path == "/tasks/a"


def test_token_never_follows_a_redirect(url: str) -> None:
    other = f"http://127.0.0.1:{free_port()}"
    ANSWERS["/api/v1/workflows/w1"] = (302, None, {"Location": other + "/steal"})
    with pytest.raises(ServerUnreachable, match="redirect"):
        Client(url, token="secret").workflow("w1")
    assert SEEN == [("/api/v1/workflows/w1", "Bearer secret")]


def test_ids_cannot_change_the_path(url: str) -> None:
    ANSWERS["/api/v1/tasks/..%2Fworkflows"] = (200, {"id": "ok"}, {})
    assert Client(url).task("../workflows") == {"id": "ok"}


def test_claim_204_is_none_and_200_is_the_claim(url: str) -> None:
    ANSWERS["/api/v1/attempts/claim"] = (204, None, {})
    assert Client(url).claim("r", [], wait=0) is None
    ANSWERS["/api/v1/attempts/claim"] = (200, {"attempt_id": "a1"}, {})
    assert Client(url).claim("r", [], wait=0) == {"attempt_id": "a1"}


def test_unreachable_says_what_to_do() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachable) as caught:
        Client(down).health()
    assert caught.value.message == (f"cannot reach {down}: start `stq server` or set STQ_SERVER")


def test_an_answer_that_never_comes_is_a_timeout_not_unreachable(url: str, monkeypatch) -> None:
    monkeypatch.setattr(client_module, "READ_SLACK", 0.3)
    ANSWERS["/api/v1/workflows/w1/cancel"] = (200, SILENT, {})
    client = Client(url)
    with pytest.raises(ServerTimeout) as caught:
        client.cancel("w1")
    assert caught.value.message.startswith(
        f"{url} did not answer POST /api/v1/workflows/w1/cancel within 0.3 s"
    )
    assert "cannot reach" not in caught.value.message
    assert isinstance(caught.value, ServerUnreachable)  # still retried by the runner
    assert isinstance(caught.value.__cause__, ReadTimeout)
    client.close()


def test_an_answer_over_the_cap_says_so(url: str) -> None:
    ANSWERS["/api/v1/workflows/w1"] = (200, {"tasks": ["x" * 1000] * 1100}, {})  # ~1.1 MB
    client = Client(url)
    client.conn.max_answer = 2**20
    with pytest.raises(NotStqServer) as caught:
        client.workflow("w1")
    assert caught.value.message.startswith(
        f"{url} does not look like an STQ server "
        "(GET /api/v1/workflows/w1 answered more than 1 MiB): set --server or STQ_SERVER"
    )
    assert isinstance(caught.value.__cause__, AnswerTooLarge)
    client.close()


HTML = b"<html><body>Not an API</body></html>"


@pytest.mark.parametrize(
    "answer",
    [
        (200, HTML, {}),  # a site that answers every path with its page
        (404, HTML, {}),  # another web server (python3 -m http.server)
        (405, {"detail": "Method Not Allowed"}, {}),  # JSON, but not STQ's error body
    ],
)
def test_an_answer_that_is_not_stq_says_the_url_is_wrong(url: str, answer: tuple) -> None:
    ANSWERS["/api/v1/workflows/w1"] = answer
    with pytest.raises(NotStqServer) as caught:
        Client(url).workflow("w1")
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"{url} does not look like an STQ server (")
    assert "STQ_SERVER" in caught.value.message


def test_a_404_where_health_is_missing_too_is_the_url_not_the_id(url: str) -> None:
    # An STQ server under a path it does not serve: its 404 body is STQ's, yet
    # the id was never looked up; its health check (under the same prefix) is missing too.
    del ANSWERS["/api/v1/health"]
    ANSWERS["/api/v1/tasks/t1"] = (404, error("not_found", "No such resource."), {})
    with pytest.raises(NotStqServer, match="no STQ API at"):
        Client(url).task("t1")
    ANSWERS["/api/v1/health"] = (200, {"ok": True}, {})
    with pytest.raises(NotFound):  # the same answer from a healthy server: an unknown id
        Client(url).task("t1")


def test_a_5xx_that_is_not_stq_stays_retryable(url: str) -> None:
    ANSWERS["/api/v1/workflows"] = (502, HTML, {})
    with pytest.raises(ServerError, match="502 Bad Gateway, not an STQ error"):
        Client(url).workflows()


@pytest.mark.parametrize("server", ["http://[::1", "http://127.0.0.1:port", "ftp://x"])
def test_a_malformed_url_is_a_usage_error(server: str) -> None:
    with pytest.raises(UsageError, match="expected http://HOST:PORT"):
        Client(server)


@pytest.mark.parametrize("token", ["bad\ntoken", "tab\there", "nul\x00", "euro\u20ac"])
def test_a_token_that_cannot_be_a_header_names_stq_token(token: str) -> None:
    with pytest.raises(UsageError, match="STQ_TOKEN"):
        Client("http://127.0.0.1:1", token)


def test_an_empty_id_is_refused_before_any_request(url: str) -> None:
    client = Client(url)
    for call in (client.task, client.workflow, client.cancel, client.retry, client.output):
        with pytest.raises(UsageError, match="empty"):
            call("")
    assert SEEN == []
