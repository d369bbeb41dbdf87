"""Every failure is one line that says what to do, the right exit code, no traceback."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.acceptance.support import STQ, assert_one_line_error, stq, write
from tests.helpers import LiveServer, free_port, http_server, scrubbed_env

DOWN = f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["submit"],
        ["run", "x.yaml", "-j", "0"],
        ["run", "x.yaml", "-j", "many"],
        ["run", "x.yaml", "-j", "257"],  # past the cap: a typo, not 1,000,000 runners
        ["run", "x.yaml", "-j", "1000000"],
        ["logs", "t1", "--attempt", "zero"],
        ["worker", "--exit-when-idle", "-3"],
        ["server", "--bind", "nonsense"],
        ["server", "--bind", "0.0.0.0:8000"],  # public with no STQ_TOKEN
        ["status", "--limit", "0"],
        # a malformed server URL is a typo to fix, not an outage to wait out
        ["worker", "notaurl", "--exit-when-idle", "1"],
        ["status", "--server", "http://127.0.0.1:port"],
        ["status", "--server", "http://[::1"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert_one_line_error(stq(*args), 2)


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "wf1"],
        ["logs", "t1"],
        ["cancel", "wf1"],
        ["retry", "wf1", "-v"],
    ],
)
def test_unreachable_server_exit_2(args: list[str]) -> None:
    result = stq(*args, env={"STQ_SERVER": DOWN})
    if "-v" in args:  # -v shows the traceback, and still ends with the one line
        assert result.returncode == 2 and "Traceback" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"stq: cannot reach {DOWN}")
        return
    assert_one_line_error(result, 2)
    assert f"cannot reach {DOWN}: start `stq server` or set STQ_SERVER" in result.stderr


@pytest.mark.parametrize("kind", ["missing", "directory", "empty"])
def test_unreadable_file_exit_1_with_validates_words(tmp_path: Path, kind: str) -> None:
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_text("")
    said = stq("validate", str(path))
    assert said.returncode == 1 and said.stdout.startswith(f"{path}:1:1: "), said.stdout
    for command, verb in (("submit", "submitted"), ("run", "run")):
        result = stq(command, str(path), env={"STQ_SERVER": DOWN})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        # validate's own lines, then one line saying what to do
        assert (
            result.stderr
            == said.stdout + f"stq: nothing was {verb}: fix {path} as the lines above say\n"
        )


def read_through_a_pipe(
    text: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``stq ARGS`` with ``{fd}`` in ARGS replaced by a pipe holding ``text``, as ``<(...)``."""
    read, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        pipe.write(text)
    try:
        argv = [STQ, *(a.replace("{fd}", f"/dev/fd/{read}") for a in args)]
        return subprocess.run(
            argv,
            env=scrubbed_env(env),
            capture_output=True,
            text=True,
            pass_fds=(read,),
            timeout=60,
        )
    finally:
        os.close(read)


def test_submit_and_run_read_a_pipe_as_validate_does(tmp_path: Path) -> None:
    text = "name: piped\ntasks:\n  a: {command: 'true'}\n"
    assert read_through_a_pipe(text, "validate", "{fd}").returncode == 0
    run = read_through_a_pipe(text, "run", "{fd}", "-j", "1")
    assert run.returncode == 0 and "workflow piped" in run.stdout, run.stderr
    server = LiveServer(db=tmp_path / "p.db", workers=1).start()
    try:
        submitted = read_through_a_pipe(text, "submit", "{fd}", env={"STQ_SERVER": server.url})
        assert submitted.returncode == 0 and submitted.stdout.strip(), submitted.stderr
    finally:
        server.stop()


def test_invalid_file_prints_problems_and_submits_nothing(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "name: bad\ntasks:\n  a: {command: x, depends_on: [b]}\n")
    result = stq("submit", str(bad), env={"STQ_SERVER": DOWN})
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad}:3:")  # FILE:LINE:COL, never reached the server
    assert "cannot reach" not in result.stderr and "Traceback" not in result.stderr


def test_unknown_ids_exit_1(live_server: LiveServer) -> None:
    env = {"STQ_SERVER": live_server.url}
    for args in (["status", "nope"], ["logs", "nope"], ["cancel", "nope"], ["retry", "nope"]):
        assert_one_line_error(stq(*args, env=env), 1)


def test_a_token_with_a_line_break_is_a_usage_error() -> None:
    result = stq("status", env={"STQ_SERVER": DOWN, "STQ_TOKEN": "bad\ntoken"})
    assert_one_line_error(result, 2)
    assert "STQ_TOKEN" in result.stderr and "unexpected" not in result.stderr


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """Another kind of web server (``python3 -m http.server``): 404 and 501 pages in HTML."""
    with http_server(functools.partial(QuietFiles, directory=str(tmp_path))) as url:
        yield url


@pytest.mark.parametrize("args", [["status"], ["status", "w1"], ["logs", "t1"], ["cancel", "w1"]])
def test_a_server_that_is_not_stq_is_a_usage_error(web_server: str, args: list[str]) -> None:
    result = stq(*args, env={"STQ_SERVER": web_server})
    assert_one_line_error(result, 2)
    assert f"{web_server} does not look like an STQ server" in result.stderr


def test_a_runner_keeps_trying_a_server_that_is_not_stq(web_server: str) -> None:
    """The runner logs and retries, as for an unreachable server (a proxy's page)."""
    result = stq("worker", web_server, "--exit-when-idle", "1", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "does not look like an STQ server" in result.stderr and "retrying" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_path_on_an_stq_server_is_a_usage_error(live_server: LiveServer) -> None:
    # Its 404s are STQ's own JSON, but no id was looked up: the URL is what is wrong.
    env = {"STQ_SERVER": live_server.url + "/prefix"}
    for args in (["status"], ["status", "w1"], ["logs", "t1"], ["retry", "w1"]):
        result = stq(*args, env=env)
        assert_one_line_error(result, 2)
        assert "does not look like an STQ server (no STQ API at" in result.stderr


def test_an_empty_id_is_a_usage_error(live_server: LiveServer) -> None:
    # '' would name another endpoint (/tasks/ lists tasks): refused before any request
    env = {"STQ_SERVER": live_server.url}
    for args in (["logs", ""], ["status", ""], ["cancel", ""], ["retry", ""]):
        result = stq(*args, env=env)
        assert_one_line_error(result, 2)
        assert "an id cannot be empty" in result.stderr


def test_refused_token_exit_2(tmp_path: Path) -> None:
    server = LiveServer(db=tmp_path / "t.db", workers=1, env={"STQ_TOKEN": "sesame"}).start()
    try:
        for token in (None, "wrong"):
            env = {"STQ_SERVER": server.url, **({"STQ_TOKEN": token} if token else {})}
            result = stq("status", env=env)
            assert_one_line_error(result, 2)
            assert "STQ_TOKEN" in result.stderr
        ok = stq("status", env={"STQ_SERVER": server.url, "STQ_TOKEN": "sesame"})
        assert ok.returncode == 0 and "no workflows yet" in ok.stdout
    finally:
        server.stop()
