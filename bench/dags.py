"""The benchmark DAGs, written both as STQ workflow files and as GNU Makefiles.

One description (task name -> names it depends on, in file order) feeds both
writers, so STQ and make run exactly the same graph of ``true`` commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

Dag = dict[str, list[str]]


def fan_out(n: int = 2000) -> Dag:
    """W1: ``n`` independent tasks."""
    return {f"t{i}": [] for i in range(n)}


def chain(n: int = 200) -> Dag:
    """W2: each task depends on the one before."""
    return {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}


def layers(depth: int = 20, width: int = 100) -> Dag:
    """W3: task i of layer k>0 depends on tasks i, i+1, i+2 (mod width) of layer k-1."""
    dag: Dag = {}
    for k in range(depth):
        for i in range(width):
            ups = [] if k == 0 else [f"l{k - 1}_{(i + d) % width}" for d in range(3)]
            dag[f"l{k}_{i}"] = ups
    return dag


WORKLOADS = {
    "W1 fan-out": (fan_out, "2,000 independent tasks"),
    "W2 chain": (chain, "200 tasks, each after the previous"),
    "W3 layers": (layers, "20 layers of 100, 3 edges each"),
}


def _yaml_lines(name: str, dag: Dag) -> Iterator[str]:
    yield f"name: {name}"
    yield "tasks:"
    for task, ups in dag.items():
        deps = f", depends_on: {json.dumps(ups)}" if ups else ""
        yield f"  {task}: {{command: 'true'{deps}}}"


def write_workflow(path: Path, name: str, dag: Dag) -> Path:
    """An STQ workflow file of ``true`` tasks (flow mappings keep 100,000 tasks fast to parse)."""
    path.write_text("\n".join(_yaml_lines(name, dag)) + "\n")
    return path


def write_workload(name: str, directory: Path) -> tuple[Path, Path, int]:
    """A workload of ``WORKLOADS`` as a workflow file and a Makefile in ``directory``,
    and its number of tasks."""
    build, _ = WORKLOADS[name]
    dag = build()
    slug = name.split()[0].lower()
    workflow = write_workflow(directory / f"{slug}.yaml", slug, dag)
    return workflow, write_makefile(directory / f"{slug}.mk", dag), len(dag)


def write_makefile(path: Path, dag: Dag) -> Path:
    """Phony targets, one per task, each running ``true`` after its dependencies."""
    names = " ".join(dag)
    lines = [f".PHONY: all {names}", f"all: {names}"]
    for task, ups in dag.items():
        lines += [f"{task}: {' '.join(ups)}".rstrip(), "\t@true"]
    path.write_text("\n".join(lines) + "\n")
    return path
