"""Every failure is one line that says what to do, the right exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.support import assert_one_line_error, stq, write
from tests.helpers import LiveServer, free_port

DOWN = f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["submit"],
        ["run", "x.yaml", "-j", "0"],
        ["run", "x.yaml", "-j", "many"],
        ["logs", "t1", "--attempt", "zero"],
        ["worker", "--exit-when-idle", "-3"],
        ["server", "--bind", "nonsense"],
        ["server", "--bind", "0.0.0.0:8000"],  # public with no STQ_TOKEN
        ["status", "--limit", "0"],
        # a malformed server URL is a typo to fix, not an outage to wait out
        ["worker", "notaurl", "--exit-when-idle", "1"],
        ["status", "--server", "http://127.0.0.1:port"],
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


def test_unreadable_file_exit_1(tmp_path: Path) -> None:
    for command in ("submit", "run"):
        result = stq(command, str(tmp_path / "missing.yaml"), env={"STQ_SERVER": DOWN})
        assert_one_line_error(result, 1)
        assert "missing.yaml" in result.stderr


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
