"""The built wheel carries its data files: ``stq validate`` works from a fresh install,
and a store opens there (its schema and its named SQL are read from the package).

The wheel is built with ``python -m build`` (offline with ``--no-isolation``
when hatchling is already installed), installed without dependencies into a
fresh venv whose ``.pth`` file borrows this venv's site-packages for them
(falcon, jsonschema, ...), and run from a directory outside the checkout so
nothing can be imported from the source tree.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow


def _build_wheel(out: Path) -> Path:
    offline = ["--no-isolation"] if importlib.util.find_spec("hatchling") else []
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", *offline, "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("stq-*.whl")
    return wheel


def _fresh_venv(where: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "parent-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return where / "bin"


#: Opens a SQLite store in the current directory and reads from it.
_OPEN_STORE = (
    "from stq.store import open_store; s = open_store('stq.db'); "
    "print(len(s.list_workflows())); s.close()"
)


def test_installed_wheel_validates_an_example(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "stq/schemas/workflow.schema.json" in names
    queries = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "stq/store").rglob("*.sql"))
    assert queries and set(queries) <= set(names)
    bindir = _fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(bindir / "python"), "-c", "import stq; print(stq.__file__)"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where
    opened = subprocess.run(
        [str(bindir / "python"), "-c", _OPEN_STORE],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 0 and opened.stdout == "0\n", opened.stdout + opened.stderr
    done = subprocess.run(
        [str(bindir / "stq"), "validate", "-v", str(EXAMPLES / "word-count.yaml")],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok (26 tasks)" in done.stdout
    bad = work / "bad.yaml"
    bad.write_text("name: w\ntasks:\n  a: {command: x, max_attempts: 0}\n")
    done = subprocess.run(
        [str(bindir / "stq"), "validate", str(bad)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "bad.yaml:3:33: tasks.a.max_attempts: 0 is less than the minimum of 1" in done.stdout
