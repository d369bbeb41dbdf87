"""Every broken file of ``tests/data/invalid`` through the real ``stq validate``.

Each file has one defect and says on its first line where and what the
complaint must be: ``# expect: LINE:COL: message fragment``.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import BIN

CORPUS = Path(__file__).resolve().parent.parent / "data" / "invalid"
FILES = sorted(CORPUS.glob("*.yaml"))
STQ = str(BIN / "stq")


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' line"
    line, col, fragment = first.removeprefix("# expect: ").split(":", 2)
    return f"{path}:{int(line)}:{int(col)}:", fragment.strip()


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 30


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STQ, "validate", str(path)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def runs() -> dict[Path, subprocess.CompletedProcess[str]]:
    """One ``stq validate`` process per file, several at a time (each takes ~0.4 s to start)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(FILES, pool.map(_validate, FILES), strict=True))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_invalid_file_is_reported_where_it_is(
    path: Path, runs: dict[Path, subprocess.CompletedProcess[str]]
) -> None:
    location, fragment = _expectation(path)
    done = runs[path]
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in done.stdout.splitlines() if line.startswith(location)]
    assert lines, f"expected {location} in:\n{output}"
    assert any(fragment in line for line in lines), f"expected {fragment!r} in:\n{output}"


def test_all_files_at_once_report_every_file() -> None:
    done = subprocess.run(
        [STQ, "validate", *map(str, FILES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    reported = {line.split(":", 1)[0] for line in done.stdout.splitlines()}
    assert reported == {str(path) for path in FILES}


def test_missing_file_is_one_located_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = subprocess.run([STQ, "validate", str(missing)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout.strip().splitlines() == [
        f"{missing}:1:1: cannot read the file: No such file or directory"
    ]
    assert "Traceback" not in done.stderr


def test_valid_and_invalid_together_exit_1(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: ok\ntasks:\n  a: {command: 'true'}\n")
    done = subprocess.run(
        [STQ, "validate", str(good), str(FILES[0])], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"{good}: ok (1 task)\n" in done.stdout
    only_good = subprocess.run([STQ, "validate", str(good)], capture_output=True, text=True)
    assert (only_good.returncode, only_good.stdout) == (0, f"{good}: ok (1 task)\n")
    quiet = subprocess.run([STQ, "validate", "-q", str(good)], capture_output=True, text=True)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
