"""Runner benchmark: ``stq run`` on a chain of trivial tasks, and the runner's own CPU per task.

    .venv/bin/python bench/bench_runner.py [--tasks 200]

1. Wall time of ``stq run chain.yaml -j 1`` for a chain of N ``true`` tasks
   (server start, runner start, every task, shutdown: what a user waits for).
2. CPU of one ``stq worker`` process per task (user + system, its own, not its
   commands'), read from /proc while it serves a chain on a live gunicorn:
   the runner's share beyond the server, i.e. HTTP client work, fork and bookkeeping.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


def chain(n: int) -> str:
    lines = ["name: chain", "tasks:"]
    for i in range(n):
        lines.append(f"  t{i}: {{command: 'true'{f', depends_on: [t{i - 1}]' if i else ''}}}")
    return "\n".join(lines) + "\n"


def own_cpu(pid: int) -> float:
    """utime + stime of ``pid`` itself, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def bench_run(path: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "stq"), "run", str(path), "-j", "1"],
        env=env,
        cwd=path.parent,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def wait_healthy(url: str) -> None:
    for _ in range(400):
        try:
            if requests.get(url + "/api/v1/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit("gunicorn did not start")


def bench_runner_cpu(path: Path, env: dict[str, str], port: int) -> tuple[float, float]:
    """(runner CPU seconds per task, wall seconds) for one runner serving the chain."""
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "stq"), "server", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env={**env, "STQ_DB": str(path.parent / "cpu.db")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runner = None
    try:
        wait_healthy(url)
        runner = subprocess.Popen(
            [str(BIN / "stq"), "worker", url],
            env=env,
            cwd=path.parent,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(1.0)  # imports done, idle in its long poll
        before = own_cpu(runner.pid)
        started = time.perf_counter()
        out = subprocess.run(
            [str(BIN / "stq"), "submit", str(path), "--wait", "--server", url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
        assert "completed" in out.stdout
        return own_cpu(runner.pid) - before, wall
    finally:
        for proc in (runner, server):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STQ_")}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.yaml"
        path.write_text(chain(args.tasks))
        runs = [bench_run(path, env) for _ in range(args.repeat)]
        print(
            f"stq run, chain of {args.tasks} trivial tasks, -j 1: best {min(runs):.2f} s, "
            f"runs {', '.join(f'{r:.2f}' for r in runs)}"
        )
        from socket import socket

        with socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cpu, wall = bench_runner_cpu(path, env, port)
        print(
            f"runner CPU: {cpu * 1000 / args.tasks:.2f} ms per task "
            f"({cpu:.2f} s for {args.tasks} tasks, incl. HTTP client + fork/exec); "
            f"server-side chain wall time {wall:.2f} s "
            f"({wall * 1000 / args.tasks:.1f} ms per task)"
        )


if __name__ == "__main__":
    main()
