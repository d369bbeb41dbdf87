"""The newcomer's path: ``gunicorn stq.api:app`` with no flags, a runner, ``stq submit --wait``.

gunicorn's default is one sync worker: one request at a time. A runner's long
poll must not hold it (claims wait at most 1 s there), so a submit and its
``--wait`` get through, and exactly one workflow is made.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import Runner, stq
from tests.helpers import BIN, free_port, healthy, scrubbed_env, wait_until

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "workflows" / "examples" / "build-and-test.yaml"


def test_plain_gunicorn_runs_a_workflow_once(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Only --bind, to a free port: everything else is gunicorn's default (one sync worker).
    argv = [str(BIN / "gunicorn"), "stq.api:app", "--bind", f"127.0.0.1:{port}"]
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=scrubbed_env({"HOME": str(tmp_path)}),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    runners = [Runner(url, tmp_path).start() for _ in range(2)]
    try:
        wait_until(lambda: healthy(url), timeout=30, what="gunicorn stq.api:app")
        workflow = shutil.copy(EXAMPLE, tmp_path / "build-and-test.yaml")
        result = stq("submit", str(workflow), "--server", url, "--wait", cwd=tmp_path, timeout=120)
        assert result.returncode == 0, (result.stdout, result.stderr)
        listed = requests.get(f"{url}/api/v1/workflows", timeout=10).json()["workflows"]
        assert [w["state"] for w in listed] == ["completed"]
        assert "Using worker: sync" in (tmp_path / "gunicorn.log").read_text()
    finally:
        for runner in runners:
            runner.stop()
        server.terminate()
        server.wait(20)
        log.close()
