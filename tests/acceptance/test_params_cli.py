"""``--param K=V`` on ``stq submit`` and ``stq run``: a declared param's value reaches
every task; a name the file does not declare, or a flag that is not K=V, is exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.support import Api, Runner, assert_one_line_error, stq, write
from tests.helpers import LiveServer

pytestmark = pytest.mark.slow

PARAMS = """\
name: params
params: {BRANCH: main, DAY: "2026-12-06"}
tasks:
  show: {command: 'echo "branch=$BRANCH day=$DAY"'}
  again: {command: 'echo "branch=$BRANCH"', depends_on: [show]}
"""


def test_submit_param_replaces_a_declared_value_in_every_task(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server = start_server()
    wf = write(tmp_path / "p.yaml", PARAMS)
    submitted = stq(
        "submit", str(wf), "--param", "BRANCH=release 2", "--param", "DAY=", "--server", server.url
    )
    assert submitted.returncode == 0, submitted.stderr
    wf_id = submitted.stdout.strip()
    default = stq("submit", str(wf), "--server", server.url)
    assert default.returncode == 0, default.stderr
    start_runner(server.url, "--exit-when-idle", "5")
    api = Api(server.url)
    api.wait_state(wf_id, "completed")
    api.wait_state(default.stdout.strip(), "completed")

    def output(workflow: str, task: str) -> str:
        shown = stq("logs", api.task(workflow, task)["id"], "--server", server.url)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    assert output(wf_id, "show") == "branch=release 2 day=\n"
    assert output(wf_id, "again") == "branch=release 2\n"
    assert output(default.stdout.strip(), "show") == "branch=main day=2026-12-06\n"
    assert api.workflow(wf_id)["params"] == {"BRANCH": "release 2", "DAY": ""}


@pytest.mark.parametrize(
    "flag",
    [
        "TAG=v1",  # not declared by the file
        "BRANCH",  # no '='
        "=main",  # no name
    ],
)
def test_a_param_the_file_does_not_declare_is_a_usage_error(
    tmp_path: Path, start_server: Callable[..., LiveServer], flag: str
) -> None:
    server = start_server()
    wf = write(tmp_path / "p.yaml", PARAMS)
    refused = stq("submit", str(wf), "--param", flag, "--server", server.url)
    assert_one_line_error(refused, 2)
    assert refused.stdout == ""
    assert Api(server.url).get("/api/v1/workflows")["workflows"] == []  # nothing was sent
    ran = stq("run", str(wf), "--param", flag, "-j", "1", cwd=tmp_path)
    assert_one_line_error(ran, 2)


def test_run_param_reaches_the_tasks(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "p.yaml",
        """\
        name: params
        params: {WHO: nobody}
        tasks:
          greet: {command: 'echo "hello $WHO" > greeting.txt'}
        """,
    )
    ran = stq("run", str(wf), "--param", "WHO=world", "-j", "1", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (tmp_path / "greeting.txt").read_text() == "hello world\n"
