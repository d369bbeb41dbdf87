"""The pre-commit hook, run by pre-commit itself as a team's repository would run it.

pre-commit installs the hook as it does for any user: it clones the hook
repository at a commit, makes a virtualenv and runs ``pip install .`` there,
so the hook's env has its own ``stq``, built from the clone. Only the network
is taken away: pip is told to use no index and no build isolation, and the
build backend and STQ's dependencies come from this venv, lent to the hook's
env through ``PYTHONPATH`` (links to its site-packages, minus STQ itself and
pip's own tools). The hook repository is a copy of this checkout committed in
a temporary git repository, so the test sees the working tree as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import BIN, scrubbed_env

pytestmark = pytest.mark.slow

#: The first run builds the hook's env (virtualenv + pip install); later runs reuse it.
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 60
HOOK_SOURCES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "stq")
#: Left out of the lent site-packages: STQ must come from the hook's own install,
#: and pip and its build tools from the hook's virtualenv.
NOT_LENT = ("stq", "pip", "setuptools", "pkg_resources", "_distutils_hack")

VALID = """\
name: nightly
tasks:
  extract:
    command: echo extract
  load:
    command: echo load
    depends_on: [extract]
"""
UNKNOWN_DEPENDENCY = """\
name: broken
tasks:
  a:
    command: echo a
    depends_on: [nope]
"""
GITHUB_ACTIONS = """\
name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: make test
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=stq tests", "-c", "user.email=tests@stq.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    ).stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@dataclass
class PreCommit:
    """pre-commit with its own cache, offline, and no way to reach this venv's ``stq``."""

    env: dict[str, str]

    def run(self, repo: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        git(repo, "add", "--all")  # pre-commit refuses an unstaged config
        return subprocess.run(
            [str(BIN / "pre-commit"), "run", "--all-files", "--color", "never"],
            cwd=repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout's hook and package, committed in a git repository of its own."""
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in HOOK_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    git(repo, "init", "--quiet")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "hooks")
    return repo, git(repo, "rev-parse", "HEAD")


def _lent_site_packages(where: Path) -> Path:
    """Links to this venv's installed distributions, for the hook's env to import."""
    where.mkdir()
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(site).iterdir():
            stem = entry.name.split("-")[0].split(".")[0]
            if stem not in NOT_LENT and entry.suffix != ".pth":
                (where / entry.name).symlink_to(entry)
    return where


@pytest.fixture(scope="module")
def pre_commit(tmp_path_factory: pytest.TempPathFactory) -> PreCommit:
    home = tmp_path_factory.mktemp("pre-commit")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN)
    env = scrubbed_env(
        {
            "PATH": path,
            "PRE_COMMIT_HOME": str(home / "cache"),
            "PYTHONPATH": str(_lent_site_packages(home / "lent")),
            "PIP_NO_INDEX": "1",
            # pip reads PIP_NO_BUILD_ISOLATION as the value of build_isolation: 0 turns it off.
            "PIP_NO_BUILD_ISOLATION": "0",
            "VIRTUALENV_OVERRIDE_APP_DATA": str(home / "virtualenv"),
            "VIRTUALENV_NO_PERIODIC_UPDATE": "1",
        }
    )
    return PreCommit(env)


def consumer(root: Path, hook_repo: tuple[Path, str], hook: str = "") -> Path:
    """A team's repository whose .pre-commit-config.yaml uses the hook at ``hook_repo``."""
    repo, rev = hook_repo
    root.mkdir()
    git(root, "init", "--quiet")
    config = textwrap.dedent(
        f"""\
        repos:
          - repo: {repo}
            rev: {rev}
            hooks:
              - id: stq-validate
        """
    )
    write(root, {".pre-commit-config.yaml": config + textwrap.indent(hook, " " * 8)})
    return root


def test_the_manifest_is_one_pre_commit_accepts() -> None:
    result = subprocess.run(
        [str(BIN / "pre-commit"), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_valid_workflows_pass_and_ci_files_are_left_alone(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit: PreCommit
) -> None:
    repo = consumer(tmp_path / "team", hook_repo)
    write(
        repo,
        {
            "workflows/nightly.yaml": VALID,
            "etl/load.stq.yml": VALID,
            ".github/workflows/ci.yml": GITHUB_ACTIONS,
            "config/settings.yaml": "debug: true\n",
        },
    )
    result = pre_commit.run(repo, timeout=INSTALL_TIMEOUT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "stq validate" in result.stdout and "Passed" in result.stdout
    (hook_stq,) = Path(pre_commit.env["PRE_COMMIT_HOME"]).glob("repo*/py_env-*/bin/stq")
    assert hook_stq.is_file()  # the hook ran its own stq: this venv's is off PATH


def test_an_invalid_workflow_fails_with_its_location(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit: PreCommit
) -> None:
    repo = consumer(tmp_path / "team", hook_repo)
    write(
        repo,
        {
            "workflows/nightly.yaml": VALID,
            "workflows/broken.yaml": UNKNOWN_DEPENDENCY,
            "etl/load.stq.yml": "name: load\ntasks: {}\n",
            ".github/workflows/ci.yml": GITHUB_ACTIONS,
        },
    )
    result = pre_commit.run(repo, timeout=INSTALL_TIMEOUT)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "workflows/broken.yaml:5:18: tasks.a.depends_on[0]: unknown task 'nope'" in (
        result.stdout
    )
    assert "etl/load.stq.yml:2:" in result.stdout
    assert "workflows/nightly.yaml: ok" in result.stdout  # checked, and found valid
    assert ".github" not in result.stdout


def test_files_on_the_hook_chooses_other_workflow_files(
    tmp_path: Path, hook_repo: tuple[Path, str], pre_commit: PreCommit
) -> None:
    repo = consumer(tmp_path / "team", hook_repo, hook="files: ^pipelines/\n")
    write(repo, {"pipelines/release.yaml": UNKNOWN_DEPENDENCY, "workflows/x.yaml": "[\n"})
    result = pre_commit.run(repo, timeout=INSTALL_TIMEOUT)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "pipelines/release.yaml:5:18: " in result.stdout
    assert "workflows/x.yaml" not in result.stdout
