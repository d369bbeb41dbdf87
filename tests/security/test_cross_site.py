"""With no token, a web page the user visits cannot drive the server (Host, Origin, type).

In-process, on a real SQLite file. A page can make the browser send a
``text/plain`` or form POST anywhere without asking, and can point a name it
owns at 127.0.0.1 (DNS rebinding): the server refuses a body that is not
JSON (415), an ``Origin`` that is not the server's own (403) and a ``Host``
it does not answer for (421), each before reading a byte of the body.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon
import pytest
import requests
from falcon import testing

from stq.api.application import create_app
from stq.settings import Settings
from tests.helpers import LiveServer
from tests.integration.test_api_guards import CountingStream
from tests.integration.test_api_support import workflow

WORKFLOWS = "/api/v1/workflows"
HOST = "127.0.0.1:8000"
SAME_ORIGIN = f"http://{HOST}"
DOC = json.dumps(workflow(a={}))
JSON = "application/json"
Client = Callable[..., testing.TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Client:
    """A TestClient for the real app; keyword arguments are ``Settings`` fields."""

    def build(**settings: Any) -> testing.TestClient:
        return testing.TestClient(create_app(Settings(db=str(tmp_path / "stq.db"), **settings)))

    return build


@pytest.fixture
def client(make_client: Client) -> testing.TestClient:
    return make_client()


def post(client: testing.TestClient, path: str = WORKFLOWS, body: str = DOC, **headers: str):
    """A POST sent the way a browser would: ``Host`` as typed, headers as given."""
    headers = {"Host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return client.simulate_post(path, body=body, headers=headers)


def stored(client: testing.TestClient) -> list[dict[str, Any]]:
    return client.simulate_get(WORKFLOWS, headers={"Host": HOST}).json["workflows"]


def assert_refused(result: testing.Result, status: int, code: str) -> None:
    assert result.status_code == status, result.text
    assert result.json["error"]["code"] == code
    assert result.headers["content-type"].startswith(JSON)
    assert result.headers["connection"] == "close"  # the body stays unread


# --- Content-Type ------------------------------------------------------------------


def test_a_text_plain_post_from_another_origin_stores_nothing(client) -> None:
    """The review's case: no CORS preflight is needed for text/plain."""
    result = post(client, Content_Type="text/plain", Origin="https://evil.example")
    assert_refused(result, 403, "forbidden")
    assert_refused(post(client, Content_Type="text/plain"), 415, "unsupported_media_type")
    assert stored(client) == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/jsonx", "text/json", "", None],
)  # fmt: skip
def test_a_body_that_is_not_declared_json_is_415(client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content_Type": content_type}
    result = post(client, **headers)
    assert_refused(result, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in result.json["error"]["message"]
    assert stored(client) == []


@pytest.mark.parametrize(
    "content_type", [JSON, "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_json_with_or_without_parameters_is_taken(client, content_type: str) -> None:
    assert post(client, Content_Type=content_type).status_code == 201
    assert len(stored(client)) == 1


def test_a_post_without_a_body_needs_no_type(client) -> None:
    """What the dashboard's cancel and retry buttons and ``stq cancel`` send."""
    wid = post(client, Content_Type=JSON).json["id"]
    result = client.simulate_post(f"{WORKFLOWS}/{wid}/cancel", headers={"Host": HOST})
    assert result.status_code == 200, result.text


def test_a_chunked_body_needs_the_type_too(client) -> None:
    stream = CountingStream(1024)
    env = testing.create_environ(method="POST", path=WORKFLOWS, headers={"Host": HOST})
    env.update({"wsgi.input": io.BufferedReader(stream), "HTTP_TRANSFER_ENCODING": "chunked"})
    env.pop("CONTENT_LENGTH", None)
    status, body = _call(client.app, env)
    assert (
        status.startswith("415") and json.loads(body)["error"]["code"] == "unsupported_media_type"
    )
    assert stream.read_bytes == 0


def test_output_posts_take_text_plain_and_only_that(client) -> None:
    """A runner streams what a command prints as text; everything else is JSON."""
    output = "/api/v1/attempts/a1/output"
    for content_type in ("text/plain", "text/plain; charset=utf-8"):
        assert post(client, output, "hello\n", Content_Type=content_type).status_code != 415
    assert_refused(post(client, output, "{}", Content_Type=JSON), 415, "unsupported_media_type")
    assert_refused(
        post(client, output, "hi", Content_Type="text/html"), 415, "unsupported_media_type"
    )
    result = post(client, "/api/v1/attempts/a1/result", "x", Content_Type="text/plain")
    assert_refused(result, 415, "unsupported_media_type")


# --- Origin ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", "http://127.0.0.1:8001", "http://127.0.0.1",
     "http://localhost:8000", "file://", "not an origin", "http://127.0.0.1:99999"],
)  # fmt: skip
def test_an_origin_other_than_the_server_is_403_even_for_a_get(client, origin: str) -> None:
    headers = {"Host": HOST, "Origin": origin}
    assert_refused(client.simulate_get(WORKFLOWS, headers=headers), 403, "forbidden")
    assert_refused(post(client, Content_Type=JSON, Origin=origin), 403, "forbidden")
    assert stored(client) == []


@pytest.mark.parametrize(
    ("host", "origin"),
    [(HOST, SAME_ORIGIN), ("localhost:8000", "http://localhost:8000"),
     ("[::1]:8000", "http://[::1]:8000"), ("LocalHost", "http://localhost"),
     ("localhost", "https://localhost")],
)  # fmt: skip
def test_the_dashboards_own_post_passes(client, host: str, origin: str) -> None:
    """A same-origin fetch carries ``Origin`` equal to the address the page was opened at."""
    headers = {"Host": host, "Origin": origin, "Content-Type": JSON}
    assert client.simulate_post(WORKFLOWS, body=DOC, headers=headers).status_code == 201
    wid = stored(client)[0]["id"]
    cancel = client.simulate_post(f"{WORKFLOWS}/{wid}/cancel", headers=headers)
    assert cancel.status_code == 200, cancel.text


def test_an_allowed_origin_passes(make_client: Client) -> None:
    """A dashboard served through a proxy at another name, listed in STQ_ALLOWED_HOSTS."""
    client = make_client(allowed_hosts=("stq.example.com", "ci.example.com:8443"))
    for origin in ("https://stq.example.com", "http://stq.example.com:81",
                   "https://ci.example.com:8443"):  # fmt: skip
        assert post(client, Content_Type=JSON, Origin=origin).status_code == 201, origin
    assert_refused(
        post(client, Content_Type=JSON, Origin="https://ci.example.com"), 403, "forbidden"
    )
    assert_refused(
        post(client, Content_Type=JSON, Origin="https://x.stq.example.com"), 403, "forbidden"
    )


# --- Host --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["rebind.evil.example", "rebind.evil.example:8000", "localhost.evil.example",
             "127.0.0.1.evil.example", "10.0.0.5:8000", "[::2]:8000", "bad:port", ""],
)  # fmt: skip
def test_a_host_the_server_does_not_answer_for_is_421(client, host: str) -> None:
    """DNS rebinding: the page's own name, pointed at 127.0.0.1, comes as the Host."""
    result = client.simulate_get(WORKFLOWS, headers={"Host": host})
    assert_refused(result, 421, "misdirected_request")
    assert "STQ_ALLOWED_HOSTS" in result.json["error"]["message"]
    origin = f"http://{host}"
    assert post(client, Content_Type=JSON, Host=host, Origin=origin).status_code == 421
    assert stored(client) == []


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:8000", "127.0.0.1", "127.1.2.3:9", "[::1]", "[::1]:8000"]
)
def test_loopback_names_and_addresses_pass(client, host: str) -> None:
    assert client.simulate_get(WORKFLOWS, headers={"Host": host}).status_code == 200


def test_names_in_allowed_hosts_pass(make_client: Client) -> None:
    client = make_client(allowed_hosts=("stq.example.com", "runner-gw:8000", "::5", "bad:port"))
    for host in ("stq.example.com", "STQ.example.com:8080", "runner-gw:8000", "[::5]:1"):
        assert client.simulate_get(WORKFLOWS, headers={"Host": host}).status_code == 200, host
    for host in ("runner-gw", "runner-gw:9000", "example.com"):
        result = client.simulate_get(WORKFLOWS, headers={"Host": host})
        assert result.status_code == 421, host


def test_allowed_hosts_are_read_once_from_the_environment() -> None:
    env = {"STQ_ALLOWED_HOSTS": " STQ.example.com , ,runner-gw:8000,"}
    assert Settings.from_env(env).allowed_hosts == ("stq.example.com", "runner-gw:8000")
    assert Settings.from_env({}).allowed_hosts == ()


class ArrivedOn:
    """What gunicorn hands over as ``gunicorn.socket``, as far as the Host rule reads it.

    A connection to a non-loopback address of this machine would be traffic
    beyond loopback, which tests never send; the rule only asks the socket's name.
    """

    def __init__(self, name: Any):
        self.name = name

    def getsockname(self) -> Any:
        return self.name


@pytest.mark.parametrize(
    ("local", "host", "status"),
    [(("192.0.2.7", 8000), "192.0.2.7:8000", 200), (("192.0.2.7", 8000), "192.0.2.7", 200),
     (("::ffff:192.0.2.7", 8000, 0, 0), "192.0.2.7:8000", 200),
     (("2001:db8::7", 8000, 0, 0), "[2001:db8::7]:8000", 200),
     (("192.0.2.7", 8000), "192.0.2.8:8000", 421), (("192.0.2.7", 8000), "evil.example", 421)],
)  # fmt: skip
def test_the_address_the_connection_arrived_on_passes(
    client, local: tuple, host: str, status: int
) -> None:
    """Bound to 0.0.0.0, gunicorn's SERVER_NAME says 0.0.0.0: the socket says which address."""
    extras = {"gunicorn.socket": ArrivedOn(local), "SERVER_NAME": "0.0.0.0"}
    result = client.simulate_get(WORKFLOWS, headers={"Host": host}, extras=extras)
    assert result.status_code == status, result.text


def test_on_a_unix_socket_the_host_is_not_its_own_proof(client) -> None:
    """gunicorn copies the Host into SERVER_NAME there: only loopback or listed names pass."""
    left, right = socket.socketpair()
    with left, right:
        extras = {"gunicorn.socket": left, "SERVER_NAME": "evil.example"}
        result = client.simulate_get(WORKFLOWS, headers={"Host": "evil.example"}, extras=extras)
        assert result.status_code == 421
        result = client.simulate_get(WORKFLOWS, headers={"Host": "localhost"}, extras=extras)
        assert result.status_code == 200


def test_an_http_10_request_without_host_passes(client) -> None:
    env = testing.create_environ(path=WORKFLOWS, http_version="1.0")
    assert "HTTP_HOST" not in env
    assert _call(client.app, env)[0].startswith("200")


# --- with a token ------------------------------------------------------------------


def test_a_token_relaxes_host_and_origin_but_not_the_type(make_client: Client) -> None:
    client = make_client(token="t0k")
    auth = {"Authorization": "Bearer t0k", "Host": "stq.internal:8000", "Origin": "null"}
    assert client.simulate_get(WORKFLOWS, headers=auth).status_code == 200
    result = client.simulate_post(WORKFLOWS, body=DOC, headers={**auth, "Content-Type": JSON})
    assert result.status_code == 201, result.text
    result = client.simulate_post(
        WORKFLOWS, body=DOC, headers={**auth, "Content-Type": "text/plain"}
    )
    assert_refused(result, 415, "unsupported_media_type")
    no_token = {"Host": "rebind.evil.example", "Origin": "https://evil.example"}
    assert_refused(client.simulate_get(WORKFLOWS, headers=no_token), 401, "unauthorized")


# --- nothing is read before a refusal ----------------------------------------------


def _call(app: falcon.App, env: dict) -> tuple[str, bytes]:
    answer: list[str] = []
    chunks = app(env, lambda status, headers, exc_info=None: answer.append(status))
    return answer[0], b"".join(chunks)


@pytest.fixture
def raw(make_client: Client) -> Iterator[Callable[..., tuple[str, int]]]:
    """Send a 20 MiB body the server can count the reads of: (status, bytes read)."""

    def send(headers: dict[str, str], token: str | None = None) -> tuple[str, int]:
        app = make_client(token=token).app
        stream = CountingStream(20 * 1024 * 1024)
        env = testing.create_environ(method="POST", path=WORKFLOWS, headers=headers)
        env.update({"wsgi.input": io.BufferedReader(stream), "CONTENT_LENGTH": str(1024 * 1024)})
        status, _ = _call(app, env)
        return status, stream.read_bytes

    yield send


@pytest.mark.parametrize(
    ("headers", "token", "status"),
    [({"Host": "rebind.evil.example", "Content-Type": JSON}, None, "421"),
     ({"Host": HOST, "Origin": "https://evil.example", "Content-Type": JSON}, None, "403"),
     ({"Host": HOST, "Content-Type": "text/plain"}, None, "415"),
     ({"Host": HOST, "Content-Type": JSON}, "t0k", "401")],
)  # fmt: skip
def test_every_refusal_comes_before_the_body_is_read(
    raw, headers: dict[str, str], token: str | None, status: str
) -> None:
    answered, read = raw(headers, token)
    assert answered.startswith(status)
    assert read == 0


# --- under a real gunicorn -----------------------------------------------------------


@pytest.mark.slow
def test_a_live_server_answers_its_own_names_only(tmp_path: Path) -> None:
    """gunicorn's environ (the socket's address, SERVER_NAME) as the rules read it."""
    server = LiveServer(db=tmp_path / "stq.db", workers=1).start()
    try:
        url = f"{server.url}{WORKFLOWS}"
        assert requests.get(url, timeout=10).status_code == 200  # Host: 127.0.0.1:PORT
        for host in (f"localhost:{server.port}", f"[::1]:{server.port}", "127.0.0.1"):
            assert requests.get(url, headers={"Host": host}, timeout=10).status_code == 200
        rebound = requests.get(url, headers={"Host": "rebind.evil.example"}, timeout=10)
        assert rebound.status_code == 421
        assert rebound.json()["error"]["code"] == "misdirected_request"
        page = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        assert requests.post(url, data=DOC, headers=page, timeout=10).status_code == 403
        assert requests.get(url, timeout=10).json()["workflows"] == []
    finally:
        server.stop()
