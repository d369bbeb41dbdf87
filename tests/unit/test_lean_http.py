"""``stq.lean_http``: plain requests read as gunicorn would read them, anything else left to it.

The environ of a plain request is compared with the one gunicorn's own parser
and ``wsgi.create`` build from the same bytes, over a real socket pair.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from gunicorn.config import Config
from gunicorn.http import RequestParser, wsgi
from hypothesis import given, settings
from hypothesis import strategies as st

from stq.lean_http import (
    MAX_FIELDS,
    MAX_HEAD,
    CachedDateResponse,
    NoRequest,
    PlainReader,
    parse_head,
    plain_environ,
    plain_possible,
)

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 8000)
RUNNER_HEAD = (
    b"POST /api/v1/attempts/a12/result HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Accept-Encoding: identity\r\nAccept: application/json\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2"
)

PLAIN_REQUESTS = [
    RUNNER_HEAD + b"\r\n\r\n{}",
    b"GET /api/v1/workflows?limit=5&state=todo HTTP/1.1\r\nHost: h:1\r\n"
    b"User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    b"DELETE /api/v1/workflows/w1 HTTP/1.1\r\nhost:  h  \r\nAuthorization: Bearer s3cret\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /api/v1/attempts/claim HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
    b"Connection: keep-alive\r\n\r\n",
]


@contextmanager
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected (client, server) socket pair, closed afterwards."""
    client, server = socket.socketpair()
    with client, server:
        yield client, server


@contextmanager
def sending(send: Callable[[], object]) -> Iterator[None]:
    """``send()`` on a daemon thread while the block reads.

    A daemon, joined with a bound: if the reader stops early, a send blocked
    on a full socket must not hang the suite (closing the pair ends it).
    """
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    yield
    sender.join(10)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with connected() as sockets:
        yield sockets


def test_a_runners_head_is_plain() -> None:
    method, path, query, uri, headers, length = parse_head(RUNNER_HEAD)
    assert (method, path, query, uri, length) == (
        "POST",
        "/api/v1/attempts/a12/result",
        "",
        "/api/v1/attempts/a12/result",
        2,
    )
    assert headers[0] == ("HOST", "127.0.0.1:8000")
    assert ("CONTENT-TYPE", "application/json") in headers


@pytest.mark.parametrize(
    "head",
    [
        b"GET /x HTTP/1.0\r\nHost: h",  # another version
        b"HEAD /x HTTP/1.1\r\nHost: h",  # a method answered without a body
        b"PATCH /x HTTP/1.1\r\nHost: h",
        b"GET /a%20b HTTP/1.1\r\nHost: h",  # a path to unquote
        b"GET http://h/x HTTP/1.1\r\nHost: h",  # absolute form
        b"GET /x#frag HTTP/1.1\r\nHost: h",
        b"GET /x HTTP/1.1",  # no Host
        b"GET /x HTTP/1.1\r\nHost: h\r\nHost: i",  # twice
        b"GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1",  # a header not taken
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked",
        b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1",
        b"GET /x HTTP/1.1\r\nHost: h\r\nUser_Agent: x",  # underscore in a name
        b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: a\tb",  # a tab
        b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xc3\xa9",  # not ASCII
        b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n b",  # obsolete folding
        b"GET /x HTTP/1.1\r\nHost: h\nUser-Agent: a",  # a bare LF
        b"GET /x HTTP/1.1\r\nHost: h\rUser-Agent: a",  # a bare CR
        b"GET /x HTTP/1.1\r\nHost : h",  # space before the colon
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: +1",
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1",
        b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999",  # over the body limit
        b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: upgrade",
        b"GET /x HTTP/1.1\r\nHost: h" + b"\r\nAccept: a" * MAX_FIELDS,  # too many lines
    ],
)
def test_anything_else_is_left_to_gunicorn(head: bytes) -> None:
    assert parse_head(head) is None


@pytest.mark.parametrize("raw", PLAIN_REQUESTS, ids=range(len(PLAIN_REQUESTS)))
def test_the_environ_is_gunicorns(raw: bytes) -> None:
    """Byte for byte the same request through both paths: the same environ and body."""
    ours = _plain_environ(Config(), raw)
    assert ours is not None
    assert ours == _gunicorn_environ(Config(), raw)


_VISIBLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=10)
_PATH = st.text(alphabet="abz/:;=,.-~_@!$&'()*+AZ09", max_size=12)
_QUERY = st.text(alphabet="abz/:;=,.-~?%&+AZ09", max_size=10)
_OPTIONAL = [
    "Accept",
    "Accept-Encoding",
    "Authorization",
    "Connection",
    "Content-Type",
    "User-Agent",
]


@st.composite
def plain_requests(draw: st.DrawFn) -> bytes:
    """Requests inside the plain rule, in the many spellings it allows."""
    method = draw(st.sampled_from(["GET", "POST", "DELETE"]))
    target = "/" + draw(_PATH) + draw(st.one_of(st.just(""), _QUERY.map("?".__add__)))
    body = draw(st.binary(max_size=30))
    names = ["Host", *draw(st.lists(st.sampled_from(_OPTIONAL), unique=True, max_size=4))]
    if body or draw(st.booleans()):
        names.insert(draw(st.integers(0, len(names))), "Content-Length")
    lines = [f"{method} {target} HTTP/1.1"]
    for name in names:
        spelled = draw(st.sampled_from([name, name.lower(), name.upper()]))
        value = {
            "Content-Length": str(len(body)),
            "Connection": draw(st.sampled_from(["close", "keep-alive", "Keep-Alive"])),
        }.get(name) or draw(_VISIBLE)
        inner = draw(st.sampled_from(["", " x", "  y z"]))  # spaces inside a value are kept
        space, trail = draw(st.sampled_from(["", " ", "  "])), draw(st.sampled_from(["", " "]))
        if value and name not in ("Content-Length", "Connection"):
            value += inner
        lines.append(f"{spelled}:{space}{value}{trail}")
    raw = "\r\n".join(lines).encode() + b"\r\n\r\n" + (body if "Content-Length" in names else b"")
    return raw


@settings(max_examples=300, deadline=None)
@given(plain_requests())
def test_every_spelling_of_a_plain_request_reads_as_gunicorn_reads_it(raw: bytes) -> None:
    """Never looser than gunicorn, and the same environ: taken as plain means read alike."""
    ours = _plain_environ(Config(), raw)
    assert ours is not None, raw
    assert ours == _gunicorn_environ(Config(), raw)


_OPAQUE = ("wsgi.input", "wsgi.errors", "wsgi.early_hints", "gunicorn.socket")


def _plain_environ(cfg: Config, raw: bytes) -> dict | None:
    """The plain path's environ (opaque objects left out, the body read), or None."""
    with connected() as (client, server):
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        req = PlainReader(server).read(5)
        if req is None:
            return None
        environ = plain_environ(req, server, CLIENT, SERVER, wsgi.base_environ(cfg))
    return _comparable(environ)


def _gunicorn_environ(cfg: Config, raw: bytes) -> dict:
    with connected() as (client, server):
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        req = next(RequestParser(cfg, server, CLIENT))
        _, environ = wsgi.create(req, server, CLIENT, SERVER, cfg)
        return _comparable(environ)


def _comparable(environ: dict) -> dict:
    body = environ["wsgi.input"].read()
    kept = {key: value for key, value in environ.items() if key not in _OPAQUE}
    return {**kept, "body": body}


def test_pipelined_and_split_requests_are_read_one_by_one(pair) -> None:
    client, server = pair
    first, second = PLAIN_REQUESTS[0], PLAIN_REQUESTS[1]
    reader = PlainReader(server)

    def send_in_pieces() -> None:
        data = first + second
        for i in range(0, len(data), 7):  # head and body cut anywhere
            client.sendall(data[i : i + 7])
        client.shutdown(socket.SHUT_WR)

    with sending(send_in_pieces):
        one, two = reader.read(5), reader.read(5)
    assert (one.method, one.body) == ("POST", b"{}")
    assert (two.method, two.query) == ("GET", "limit=5&state=todo")
    with pytest.raises(NoRequest):  # closed cleanly between requests
        reader.read(5)


def test_a_request_that_is_not_plain_is_handed_back_whole(pair) -> None:
    client, server = pair
    odd = b"GET /x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    client.sendall(PLAIN_REQUESTS[1] + odd + PLAIN_REQUESTS[1])
    client.shutdown(socket.SHUT_WR)
    reader = PlainReader(server)
    assert reader.read(5) is not None
    assert reader.read(5) is None
    assert reader.unread() == odd + PLAIN_REQUESTS[1]  # gunicorn starts from here
    assert reader.unread() == b""


def test_a_head_past_the_limit_is_handed_back(pair) -> None:
    client, server = pair
    long_head = b"GET /x HTTP/1.1\r\nHost: " + b"h" * MAX_HEAD
    client.sendall(long_head)  # no end of head yet: gunicorn applies its own limit to it
    reader = PlainReader(server)
    assert reader.read(5) is None
    assert reader.unread() == long_head


def test_a_head_cut_off_is_handed_back(pair) -> None:
    client, server = pair
    client.sendall(b"GET /x HTTP/1.1\r\nHo")
    client.shutdown(socket.SHUT_WR)  # the end, but not a clean close between requests
    reader = PlainReader(server)
    assert reader.read(5) is None
    assert reader.unread() == b"GET /x HTTP/1.1\r\nHo"


def test_a_body_cut_off_is_handed_back(pair) -> None:
    client, server = pair
    request = RUNNER_HEAD + b"\r\n\r\n{"
    client.sendall(request)
    client.shutdown(socket.SHUT_WR)
    reader = PlainReader(server)
    assert reader.read(5) is None
    assert reader.unread() == request


def test_the_plain_path_is_off_where_gunicorn_has_more_to_do(monkeypatch) -> None:
    cfg = Config()
    assert plain_possible(cfg, CLIENT, SERVER)
    assert not plain_possible(cfg, "", "/run/stq.sock")  # a Unix socket
    cfg.set("proxy_protocol", "v1")
    assert not plain_possible(cfg, CLIENT, SERVER)
    cfg = Config()
    cfg.set("limit_request_line", 100)
    assert not plain_possible(cfg, CLIENT, SERVER)
    monkeypatch.setenv("SCRIPT_NAME", "/stq")
    assert not plain_possible(Config(), CLIENT, SERVER)


def test_the_response_head_is_gunicorns() -> None:
    """Same status line, Server, Connection, chunking; only Date is formatted once a second."""
    cfg = Config()
    with connected() as (client, server):
        client.sendall(PLAIN_REQUESTS[1])
        client.shutdown(socket.SHUT_WR)
        req = next(RequestParser(cfg, server, CLIENT))
        for status, headers in [("200 OK", []), ("204 No Content", []), ("200 OK", [("a", "b")])]:
            theirs, ours = wsgi.Response(req, server, cfg), CachedDateResponse(req, server, cfg)
            for resp in (theirs, ours):
                resp.start_response(status, headers)
            for _ in range(3):  # unless a second boundary falls in between, Date is equal too
                if (a := theirs.default_headers()) == (b := ours.default_headers()):
                    break
            assert a == b


def _post(body_length: int) -> bytes:
    return (
        b"POST /api/v1/attempts/a1/result HTTP/1.1\r\nHost: h\r\n"
        b"Content-Length: %d\r\n\r\n" % body_length
    )


def test_a_long_body_is_read_whole_and_what_follows_is_kept(pair) -> None:
    client, server = pair
    body = bytes(range(256)) * 1200  # 300 KiB: many reads
    data = _post(len(body)) + body + PLAIN_REQUESTS[1]
    reader = PlainReader(server)
    with sending(lambda: client.sendall(data)):
        first = reader.read(5)
        second = reader.read(5)
    assert first.body == body
    assert second.path == "/api/v1/workflows"


def test_a_long_body_cut_off_is_handed_back_whole(pair) -> None:
    client, server = pair
    sent = _post(200_000) + b"x" * 150_000
    reader = PlainReader(server)
    with sending(lambda: (client.sendall(sent), client.shutdown(socket.SHUT_WR))):
        assert reader.read(5) is None
    assert reader.unread() == sent
