"""The CI jobs docs/ci.md shows, run command by command as the CI system would.

Each job's YAML is read from the page itself; its install step is the one
thing not run (there is no package index here, and this venv's ``stq`` is the
one under test), every other command runs in a shell, in a directory holding
the repository's workflows, with this venv's ``bin`` first on ``PATH``. The
report it leaves is read back with junitparser, as the CI systems' JUnit
readers do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml, Skipped

from tests.conftest import ROOT
from tests.helpers import BIN, scrubbed_env

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "ci.md"
RUN_TIMEOUT = 120
INSTALL = re.compile(r"^python -m pip install stq$")
#: ci-pipeline's tasks after its matrix expands: checkout, six tests, package, notify, cleanup.
EXPANDED_TASKS = 10


def _yaml_blocks() -> dict[str, object]:
    """Each ```yaml block of the page, by the file name in its first comment line."""
    blocks = re.findall(r"```yaml\n# (\S+)\n(.*?)```", PAGE.read_text(), re.S)
    return {name: yaml.safe_load(body) for name, body in blocks}


def _github_commands() -> list[str]:
    (job,) = _yaml_blocks()[".github/workflows/pipeline.yml"]["jobs"].values()  # type: ignore[index]
    return [step["run"] for step in job["steps"] if "run" in step]


def _gitlab_commands() -> list[str]:
    return _yaml_blocks()[".gitlab-ci.yml"]["pipeline"]["script"]  # type: ignore[index]


def _run_job(commands: list[str], workdir: Path) -> list[subprocess.CompletedProcess[str]]:
    """The job's commands in order, stopping at the first that fails, as CI does."""
    assert INSTALL.match(commands[0]), commands[0]
    shutil.copytree(ROOT / "workflows", workdir / "workflows")
    env = scrubbed_env()
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    done = []
    for command in commands[1:]:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        done.append(result)
        if result.returncode:
            break
    return done


def _cases(report: Path) -> dict[str, object]:
    """Each test case of the report by name, with the kind of its result (None: passed)."""
    (suite,) = JUnitXml.fromfile(str(report))
    kinds = {}
    for case in suite:
        results = [type(r) for r in case.result]
        assert Error not in results
        kinds[case.name] = results[0] if results else None
    return kinds


@pytest.mark.parametrize("job", [_github_commands, _gitlab_commands], ids=["github", "gitlab"])
def test_documented_job_passes_and_leaves_a_report(job, tmp_path: Path) -> None:
    results = _run_job(job(), tmp_path)
    assert [r.returncode for r in results] == [0, 0], [(r.stdout, r.stderr) for r in results]
    cases = _cases(tmp_path / "report.xml")
    assert len(cases) == EXPANDED_TASKS
    assert cases["notify-failure"] is Skipped
    assert cases["test-2-full"] is None and cases["cleanup"] is None
    assert not (tmp_path / "stq-example-out" / "ci-pipeline" / "src").exists()  # cleaned up


def test_documented_job_fails_with_failures_in_the_report(tmp_path: Path) -> None:
    commands = [c.replace("FAIL_SHARD=0", "FAIL_SHARD=2") for c in _github_commands()]
    results = _run_job(commands, tmp_path)
    assert [r.returncode for r in results] == [0, 1], [(r.stdout, r.stderr) for r in results]
    cases = _cases(tmp_path / "report.xml")
    failed = {name for name, kind in cases.items() if kind is Failure}
    assert failed == {"test-2-fast", "test-2-full", "package"}
    assert cases["notify-failure"] is None and cases["cleanup"] is None
    notified = tmp_path / "stq-example-out" / "ci-pipeline" / "notified"
    assert "telling the team" in notified.read_text()
