"""The benchmark's DAGs, written identically for STQ and for make."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import dags
from stq.loader import load_workflow_file


def test_the_layers_have_three_edges_each_wrapping_around() -> None:
    dag = dags.layers(depth=3, width=5)
    assert len(dag) == 15
    assert dag["l0_0"] == []
    assert dag["l2_4"] == ["l1_4", "l1_0", "l1_1"]
    assert all(len(ups) == 3 for name, ups in dag.items() if not name.startswith("l0_"))


def test_sizes_match_the_issue() -> None:
    assert len(dags.fan_out()) == 2000
    chain = dags.chain()
    assert len(chain) == 200 and chain["t199"] == ["t198"] and chain["t0"] == []
    assert len(dags.layers()) == 2000


def test_the_workflow_file_is_valid_and_keeps_every_edge(tmp_path: Path) -> None:
    dag = dags.layers(depth=4, width=6)
    spec = load_workflow_file(dags.write_workflow(tmp_path / "w.yaml", "w", dag))
    assert {t.name: list(t.depends_on) for t in spec.tasks} == dag


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_runs_the_same_order(tmp_path: Path) -> None:
    dag = dags.chain(5)
    makefile = dags.write_makefile(tmp_path / "Makefile", dag)
    # a fresh make, not a sub-make of `make test` (whose MAKEFLAGS would add chatter)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "-n", "-f", str(makefile), "all"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert out.stdout.split() == ["true"] * 5
    ran = subprocess.run(["make", "-j4", "-s", "-f", str(makefile), "all"], cwd=tmp_path, env=env)
    assert ran.returncode == 0
