"""How fast ``stq validate`` is on big workflows, against its speed targets.

Writes two files to a temporary directory and loads each in a fresh
subprocess, so the peak RSS reported is that of loading one file:

* 10,000 tasks with 30,000 edges (target: < 1 s);
* 100,000 tasks in 1,000 layers of 100, 3 edges each (target: < 10 s, < 1 GiB).

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


def measure(path: Path) -> dict[str, float]:
    """Load ``path`` in a fresh interpreter; its time and peak memory."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    cases = [("10k-tasks-30k-edges", 100, 100, 3), ("100k-tasks", 1000, 100, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers, width, fan_in in cases:
            path = Path(tmp) / f"{label}.yaml"
            edges = write_layers(path, layers, width, fan_in)
            size_mib = path.stat().st_size / 2**20
            result = measure(path)
            print(
                f"{label}: {result['tasks']} tasks, {edges} edges, {size_mib:.1f} MiB: "
                f"{result['seconds']:.2f} s, peak RSS {result['peak_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
