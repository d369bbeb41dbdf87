"""What ``stq status WORKFLOW_ID`` and ``submit --wait`` say beyond states: params,
descriptions, run_if, and a skipped task told apart (in JUnit too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import junitparser
import pytest

from tests.acceptance.support import Runner, stq, write
from tests.helpers import LiveServer

pytestmark = pytest.mark.slow

CI = """\
name: ci
params: {BRANCH: main}
tasks:
  build:
    description: Build the package for $BRANCH
    command: 'echo "building $BRANCH"'
  notify:
    command: 'echo should not run'
    depends_on: [build]
    run_if: on_failure
  cleanup:
    command: 'true'
    depends_on: [notify]
    run_if: always
"""


def test_status_shows_params_descriptions_run_if_and_a_skipped_task(
    tmp_path: Path,
    start_server: Callable[..., LiveServer],
    start_runner: Callable[..., Runner],
) -> None:
    server = start_server()
    start_runner(server.url)
    wf = write(tmp_path / "ci.yaml", CI)
    report = tmp_path / "report.xml"
    waited = stq(
        "submit", str(wf), "--wait", "--param", "BRANCH=dev", "--junit", str(report),
        "--server", server.url,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stdout + waited.stderr
    wf_id, *lines = waited.stdout.splitlines()
    assert any(line.endswith("3/3 done: 3 completed (1 skipped)") for line in lines)
    summary_row = next(line for line in lines if line.startswith("notify "))
    assert summary_row.split()[1:3] == ["completed", "(skipped)"]

    shown = stq("status", wf_id, "--server", server.url)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.splitlines()
    assert text[0] == f"workflow ci ({wf_id}): completed, 3/3 done: 3 completed (1 skipped)"
    assert text[1] == "params: BRANCH=dev"
    head = next(i for i, line in enumerate(text) if line.split()[:3] == ["TASK", "TASK", "ID"])
    table = text[head + 1 : text.index("", head)]
    rows = {line.split()[0]: line.split() for line in table}
    assert list(rows) == ["build", "notify", "cleanup"]
    assert rows["notify"][2:5] == ["completed", "(skipped)", "0"]
    assert rows["build"][2] == "completed" and rows["build"][3] == "1"
    details = text[text.index("TASK     RUN IF      DESCRIPTION") + 1 :]
    assert [line.split() for line in details[:3]] == [
        ["build", "Build", "the", "package", "for", "$BRANCH"],
        ["notify", "on_failure"],
        ["cleanup", "always"],
    ]
    assert details[0].index("Build") == len("TASK     RUN IF      ")  # under DESCRIPTION
    assert all(len(line) <= 80 for line in text)

    suite = next(iter(junitparser.JUnitXml.fromfile(str(report))))
    cases = {case.name: case for case in suite}
    assert cases["build"].is_passed and cases["cleanup"].is_passed
    (skipped,) = cases["notify"].result
    assert isinstance(skipped, junitparser.Skipped)
    assert (suite.tests, suite.failures, suite.skipped) == (3, 0, 1)
