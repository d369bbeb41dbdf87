"""``stq server`` refuses a public bind with no token (unless ``--insecure``) and bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from stq.api import launch
from stq.errors import UsageError
from tests.acceptance.support import assert_one_line_error, stq


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Catch the exec of gunicorn: the checks run, nothing binds."""
    calls: list[list[str]] = []
    monkeypatch.setattr(launch.os, "execve", lambda path, argv, env: calls.append(list(argv)))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "[::]", "example.com"])
def test_public_bind_without_token_is_refused(host: str, execs: list[list[str]]) -> None:
    with pytest.raises(UsageError, match="STQ_TOKEN"):
        launch.serve(f"{host}:8000", None, 1, insecure=False, token=None, environ={})
    assert execs == []


@pytest.mark.parametrize(
    ("host", "insecure", "token"),
    [("127.0.0.1", False, None), ("localhost", False, None), ("[::1]", False, None),
     ("0.0.0.0", True, None), ("0.0.0.0", False, "t0k")],
)  # fmt: skip
def test_allowed_binds(host: str, insecure: bool, token: str | None, execs) -> None:
    launch.serve(f"{host}:8000", None, 1, insecure=insecure, token=token, environ={})
    assert len(execs) == 1 and f"{host}:8000" in execs[0]


def test_cli_refuses_with_one_line() -> None:
    result = stq("server", "--bind", "0.0.0.0:1")
    assert_one_line_error(result, 2)
    assert "--insecure" in result.stderr


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"STQ_HEARTBEAT_TIMEOUT": "abc"}, "STQ_HEARTBEAT_TIMEOUT='abc'"),
        ({"STQ_HEARTBEAT_TIMEOUT": "0"}, "positive number"),
        ({"STQ_HEARTBEAT_TIMEOUT": "-1"}, "positive number"),
        ({"STQ_DB": "/nonexistent-stq-dir/x.db"}, "does not exist"),
        ({"STQ_DB": "/"}, "is a directory"),
        ({"STQ_DB": "mysql://h/db"}, "Not a store path or URL"),
        ({"STQ_ALLOWED_HOSTS": "stq.example.com,name:notaport"}, "'name:notaport'"),
    ],
)
def test_settings_the_server_could_not_use_are_refused_before_it_starts(
    environ: dict[str, str], says: str, execs: list[list[str]]
) -> None:
    """Else a typo would silently be the default, or every request a 503."""
    with pytest.raises(UsageError, match=says):
        launch.serve("127.0.0.1:8000", None, 1, insecure=False, token=None, environ=environ)
    assert execs == []


def test_a_postgresql_url_and_a_new_sqlite_file_are_accepted(
    execs: list[list[str]], tmp_path: Path
) -> None:
    for db in ("postgresql://127.0.0.1:1/nowhere", str(tmp_path / "new.db")):
        environ = {"STQ_HEARTBEAT_TIMEOUT": "6"}
        launch.serve("127.0.0.1:8000", db, 1, insecure=False, token=None, environ=environ)
    assert len(execs) == 2
