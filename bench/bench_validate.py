"""How fast ``stq validate`` is on big workflows, against its speed targets.

Writes three files to a temporary directory and loads each in a fresh
subprocess, so the peak RSS reported is that of loading one file:

* 10,000 tasks with 30,000 edges (target: < 1 s);
* 100,000 tasks in 1,000 layers of 100, 3 edges each (target: < 10 s, < 1 GiB);
* 100,000 tasks written as 400 matrix tasks of 250 combinations each, each
  depending on one expansion of the one before, and every 40th on all of
  them (target: < 10 s). For this file the line also gives the time of
  ``submit_body`` (what ``stq submit`` does before it sends), the size of
  the body, and the time the server takes to check that body
  (``load_workflow_document`` of the parsed JSON).

Run: ``.venv/bin/python bench/bench_validate.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

_MEASURE = """
import json, resource, sys, time
from stq.loader import load_workflow_file
start = time.perf_counter()
spec = load_workflow_file(sys.argv[1])
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"tasks": len(spec.tasks), "seconds": seconds, "peak_mib": peak_kib / 1024}))
"""

_MEASURE_BODY = """
import json, sys, time
from stq.loader import load_workflow_document, submit_body
start = time.perf_counter()
spec, body = submit_body(sys.argv[1])
client = time.perf_counter() - start
start = time.perf_counter()
served = load_workflow_document(json.loads(body))
server = time.perf_counter() - start
assert served == spec
print(json.dumps({"client": client, "server": server, "body_mib": len(body) / 2**20}))
"""


def write_layers(path: Path, layers: int, width: int, fan_in: int) -> int:
    """A layered DAG: each task depends on ``fan_in`` tasks of the layer before."""
    edges = 0
    with path.open("w") as out:
        out.write("name: bench\ntasks:\n")
        for layer in range(layers):
            for i in range(width):
                out.write(f"  t{layer}_{i}:\n    command: echo {layer} {i}\n")
                if layer:
                    deps = ", ".join(f"t{layer - 1}_{(i + k) % width}" for k in range(fan_in))
                    out.write(f"    depends_on: [{deps}]\n")
                    edges += fan_in
    return edges


def write_matrices(path: Path, tasks: int, rows: int, columns: int, whole_every: int) -> int:
    """Matrix tasks of ``rows`` x ``columns`` combinations, each after the one before.

    Task ``m{i}`` depends on one expansion of ``m{i-1}``, or, every
    ``whole_every``-th task, on ``m{i-1}`` itself: all of its expansions.
    """
    a_values = ", ".join(f"a{j}" for j in range(rows))
    b_values = ", ".join(str(k) for k in range(columns))
    combinations = rows * columns
    edges = 0
    with path.open("w") as out:
        out.write("name: bench-matrix\nparams: {STAGE: bench}\ntasks:\n")
        for i in range(tasks):
            out.write(f"  m{i}:\n    command: echo {i} $A $B\n")
            out.write(f"    matrix: {{A: [{a_values}], B: [{b_values}]}}\n")
            if not i:
                continue
            if i % whole_every == 0:
                out.write(f"    depends_on: [m{i - 1}]\n")
                edges += combinations * combinations
            else:
                out.write(f"    depends_on: [m{i - 1}-a{i % rows}-{i % columns}]\n")
                edges += combinations
    return edges


def _run(script: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def measure(path: Path) -> dict[str, float]:
    """Load ``path`` in a fresh interpreter; its time and peak memory."""
    return _run(_MEASURE, path)


def _report(label: str, path: Path, edges: int) -> None:
    size_mib = path.stat().st_size / 2**20
    result = measure(path)
    print(
        f"{label}: {result['tasks']} tasks, {edges} edges, {size_mib:.1f} MiB: "
        f"{result['seconds']:.2f} s, peak RSS {result['peak_mib']:.0f} MiB"
    )


def main() -> None:
    cases = [("10k-tasks-30k-edges", 100, 100, 3), ("100k-tasks", 1000, 100, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers, width, fan_in in cases:
            path = Path(tmp) / f"{label}.yaml"
            _report(label, path, write_layers(path, layers, width, fan_in))
        label = "100k-tasks-from-400-matrices"
        path = Path(tmp) / f"{label}.yaml"
        _report(label, path, write_matrices(path, 400, 25, 10, 40))
        body = _run(_MEASURE_BODY, path)
        print(
            f"{label}: submit_body {body['client']:.2f} s, body {body['body_mib']:.2f} MiB; "
            f"server check of the body {body['server']:.2f} s"
        )


if __name__ == "__main__":
    main()
