"""How the server's cost grows with the number of runners connected to it.

    .venv/bin/python bench/runners.py                       # 4, 200, 1000, 2000 runners
    .venv/bin/python bench/runners.py --runners 4,200,1000  # choose the counts
    .venv/bin/python bench/runners.py --quick               # smaller workflows, 60 s deadlines

For each count N, each scenario gets a fresh ``stq server`` on a new SQLite
file and N protocol-level runners (``bench/swarm.py``: one asyncio loop, one
connection each), all idle in their long polls before the workflow is
submitted:

- chain: a 200-task chain run by all N runners -> ms per hop;
- fan-out: 2,000 independent tasks run by all N runners -> tasks/s;
- idle others: a 500-task fan-out whose tasks carry a label only 4 runners
  have, while N-4 runners wait with another label -> its wall against the same
  with 4 runners alone (the N = 4 row).

Walls are read from the store (the workflow's submit commit to its terminal
commit). Beside each, a separate process asks ``GET /api/v1/health`` every
0.1 s on a new connection and keeps the slowest answer (while the runners
connect, and once all are connected, apart); the server's CPU while
the N runners sit idle and its resident memory (master and workers) at the end
are read from /proc. Each scenario has a deadline and is recorded "timed out"
rather than waited for. Writes ``bench/results/runners.md``
(``runners-quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dags, procs, swarm  # noqa: E402
from bench.report import machine  # noqa: E402

#: The runners that take work in "idle others", and the label only their tasks carry.
WORKING = 4
WORK_LABEL = "bench"
#: The label the other runners wait with: no task carries it.
IDLE_LABEL = "gpu"
#: Seconds the runners sit idle, all long-polling, before the submit (the server's idle
#: CPU is measured over this window).
SETTLE = 2.0
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 30.0
#: (chain, fan-out, idle-others fan-out) sizes, full and ``--quick``.
SIZES = {False: (200, 2000, 500), True: (50, 500, 200)}


@dataclass
class Row:
    runners: int
    scenario: str
    result: str  # "12.3 ms/hop", "540 tasks/s", "timed out" ...
    wall: float | None
    idle_cpu: float | None  # server CPU share (1.0 = one core) while all runners waited
    slowest_health: float  # seconds, once every runner was connected
    slowest_health_connecting: float  # seconds, while the runners connected
    health_failures: int
    rss_mib: float
    runner_failures: int
    own_cpu: float | None


# --- the health probe: its own process, so the benchmark's loop never delays it ----------


#: The probe's phases: runners still connecting, all of them connected (idle, then the
#: workflow, to its end), then the benchmark closing their connections (not reported).
CONNECTING, CONNECTED, CLOSING = 0, 1, 2


def _probe(url: str, stop, phase, slowest, failures) -> None:
    """``GET /api/v1/health`` on a new connection every ``PROBE_EVERY``; the slowest per phase."""
    parts = urlsplit(url)
    while not stop.is_set():
        now = phase.value
        started = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=PROBE_TIMEOUT)
        try:
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status != 200:
                failures.value += 1
        except OSError:
            failures.value += 1
        finally:
            conn.close()
        slowest[now] = max(slowest[now], time.perf_counter() - started)
        stop.wait(PROBE_EVERY)


class Probe:
    def __init__(self, url: str):
        ctx = multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.phase = ctx.Value("i", CONNECTING)
        self.slowest = ctx.Array("d", 3)
        self.failures = ctx.Value("i", 0)
        args = (url, self.stop, self.phase, self.slowest, self.failures)
        self.proc = ctx.Process(target=_probe, args=args, daemon=True)

    def connected(self) -> None:
        self.phase.value = CONNECTED

    def closing(self) -> None:
        self.phase.value = CLOSING

    def __enter__(self) -> Probe:
        self.proc.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.proc.join(PROBE_TIMEOUT + 5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# --- the server's side, from /proc ----------------------------------------------------------


def rss_mib(pid: int) -> float:
    """Resident memory of gunicorn's master and workers together."""
    total = 0
    for p in procs.process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(ln.split()[1]) for ln in lines if ln.startswith("VmRSS:"))
    return total / 1024


def open_files_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return f"{soft} (hard {hard})"
    return "unknown"


def raise_open_files() -> tuple[int, int]:
    """Our soft limit up to the hard one: each runner is one socket here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- one scenario ------------------------------------------------------------------------------


@dataclass
class Outcome:
    wall: float | None
    note: str
    idle_cpu: float | None
    failures: int
    own_cpu: float | None = None  # this process's CPU share from submit to the end


def document(name: str, dag: dags.Dag, labels: list[str]) -> dict:
    """The workflow file of ``bench/dags.py`` as the JSON the API takes."""
    extra = {"labels": labels} if labels else {}
    tasks = {
        task: {"command": "true", **({"depends_on": ups} if ups else {}), **extra}
        for task, ups in dag.items()
    }
    return {"name": name, "tasks": tasks}


async def _until(predicate, deadline: float, interval: float = 0.05) -> bool:
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def _listed(url: str) -> int:
    """How many runners the server lists: it has taken in each one's first claim (0 while
    it does not answer: the caller's deadline decides)."""
    try:
        return len(requests.get(url + "/api/v1/runners", timeout=30).json()["runners"])
    except requests.RequestException:
        return 0


async def _finished(db: Path, deadline: float) -> tuple | None:
    """The newest workflow's (created, finished, state) once terminal, or None at the deadline."""
    probe = procs.StoreProbe(db)
    try:
        while time.monotonic() < deadline:
            row = await asyncio.to_thread(probe.workflow_times)
            if row and row[1] is not None:
                return row
            await asyncio.sleep(0.01)
    finally:
        probe.close()
    return None


def failed_attempts(db: Path) -> str:
    """How many attempts failed and the first one's reason, read-only from the store."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        count, reason = conn.execute(
            "SELECT count(*), min(reason) FROM attempt WHERE status = 'failed'"
        ).fetchone()
    finally:
        conn.close()
    return f"{count} attempts failed, e.g. {reason!r}"


async def drive(
    url: str, db: Path, server_pids: list[int], groups, doc: dict, timeout: float, probe: Probe
) -> Outcome:
    """Connect the runners, let them all wait, submit ``doc``, wait for its end."""
    parts = urlsplit(url)
    stats = swarm.Stats()
    tasks, links = swarm.start(parts.hostname, parts.port, groups, stats)
    total = sum(count for count, _ in groups)
    try:
        if not await _until(lambda: len(stats.polling) >= total, time.monotonic() + timeout):
            note = f"timed out connecting ({len(stats.polling)}/{total} polling)"
            return Outcome(None, note, None, stats.errors)
        if not await _until(lambda: _listed(url) >= total, time.monotonic() + timeout, 0.2):
            return Outcome(None, "timed out (runners not all listed)", None, stats.errors)
        probe.connected()
        cpu = procs.cpu_seconds(server_pids)
        await asyncio.sleep(SETTLE)
        idle_cpu = (procs.cpu_seconds(server_pids) - cpu) / SETTLE
        deadline = time.monotonic() + timeout
        own, started = time.process_time(), time.monotonic()
        try:
            answer = await asyncio.to_thread(
                requests.post, url + "/api/v1/workflows", json=doc, timeout=timeout
            )
            answer.raise_for_status()
        except requests.Timeout:
            return Outcome(None, "timed out (submit unanswered)", idle_cpu, stats.errors)
        except requests.RequestException as ex:
            return Outcome(
                None,
                f"submit failed: {type(ex).__name__}",
                idle_cpu,
                stats.errors,
            )
        row = await _finished(db, deadline)
        if row is None:
            return Outcome(None, "timed out", idle_cpu, stats.errors)
        created, finished, state = row
        note = "" if state == "completed" else f"ended {state}: {failed_attempts(db)}"
        own = (time.process_time() - own) / (time.monotonic() - started)
        return Outcome(finished - created, note, idle_cpu, stats.errors, own)
    finally:
        probe.closing()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in links:
            link.close()


def scenario(
    name: str, n: int, doc: dict, groups, tmp: Path, timeout: float, plain: bool
) -> tuple[Row, str]:
    """One fresh server, its runners and probe; returns the row and the server's fd limit."""
    db = tmp / f"{name.replace(' ', '-')}-{n}-{time.monotonic_ns()}.db"
    with procs.server(db, plain=plain) as (url, server), Probe(url) as probe:
        pids = procs.process_tree(server.pid)
        limit = open_files_limit(server.pid)
        outcome = asyncio.run(drive(url, db, pids, groups, doc, timeout, probe))
        memory = rss_mib(server.pid)
    size = len(doc["tasks"])
    if outcome.wall is None:
        result = outcome.note
    elif name == "chain":
        result = f"{outcome.wall * 1000 / (size - 1):.2f} ms/hop"
    elif name == "fan-out":
        result = f"{size / outcome.wall:,.0f} tasks/s"
    else:
        result = f"{outcome.wall:.2f} s"
    if outcome.wall is not None and outcome.note:
        result += f" ({outcome.note})"
    row = Row(n, name, result, outcome.wall, outcome.idle_cpu, probe.slowest[CONNECTED],
              probe.slowest[CONNECTING], probe.failures.value, memory, outcome.failures,
              outcome.own_cpu)  # fmt: skip
    return row, limit


def plan(n: int, quick: bool) -> list[tuple[str, dict, list]]:
    """(scenario, workflow document, runner groups) for ``n`` runners."""
    chain, fan, idle_fan = SIZES[quick]
    return [
        ("chain", document("chain", dags.chain(chain), []), [(n, [])]),
        ("fan-out", document("fan-out", dags.fan_out(fan), []), [(n, [])]),
        (
            "idle others",
            document("idle-others", dags.fan_out(idle_fan), [WORK_LABEL]),
            [(WORKING, [WORK_LABEL]), (max(0, n - WORKING), [IDLE_LABEL])],
        ),
    ]


# --- the report -------------------------------------------------------------------------------

HEADER = [
    "runners", "scenario", "result", "vs 4 runners", "server CPU idle",
    "slowest health (ms)", "slowest health while connecting (ms)", "health failures",
    "server RSS (MiB)", "runner errors", "bench CPU",
]  # fmt: skip


def table_rows(rows: list[Row]) -> list[list[str]]:
    base = {r.scenario: r.wall for r in rows if r.runners == WORKING}
    out = []
    for r in rows:
        ref = base.get(r.scenario)
        ratio = f"{r.wall / ref:.2f}x" if r.wall and ref else ""
        cpu = f"{r.idle_cpu * 100:.0f}%" if r.idle_cpu is not None else ""
        out.append([str(r.runners), r.scenario, r.result, ratio, cpu,
                    f"{r.slowest_health * 1000:.0f}",
                    f"{r.slowest_health_connecting * 1000:.0f}", str(r.health_failures),
                    f"{r.rss_mib:.0f}", str(r.runner_failures),
                    f"{r.own_cpu * 100:.0f}%" if r.own_cpu is not None else ""])  # fmt: skip
    return out


def text(rows: list[Row]) -> str:
    lines = [HEADER, *table_rows(rows)]
    widths = [max(len(r[i]) for r in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines)


#: Slowest health answer allowed, and server memory (all processes) at 1,000 runners.
HEALTH_LIMIT = 0.050
RSS_LIMIT_MIB = 300


def targets(rows: list[Row]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target the rows can tell."""
    by = {(r.runners, r.scenario): r for r in rows}
    out = []
    for n, limit in ((1000, 2.0), (2000, 3.0)):
        base, row = by.get((WORKING, "chain")), by.get((n, "chain"))
        if base and row and base.wall and row.wall:
            ratio = row.wall / base.wall
            out.append((f"{n} idle runners: chain hop <= {limit:g}x its hop with {WORKING}",
                        f"{ratio:.2f}x", ratio <= limit))  # fmt: skip
    base, row = by.get((WORKING, "idle others")), by.get((1000, "idle others"))
    if base and row and base.wall and row.wall:
        ratio = row.wall / base.wall
        out.append((f"{WORKING} working, 996 waiting for another label: <= 1.5x the wall "
                     f"with {WORKING} alone", f"{ratio:.2f}x", ratio <= 1.5))  # fmt: skip
    base, row = by.get((WORKING, "fan-out")), by.get((1000, "fan-out"))
    if base and row and base.wall and row.wall:
        ratio = base.wall / row.wall
        out.append((f"1000 fitting runners: fan-out rate >= the rate {WORKING} reach",
                     f"{ratio:.2f}x", ratio >= 1.0))  # fmt: skip
    slowest = max((r.slowest_health for r in rows), default=0.0)
    out.append(("health within 50 ms (every runner taken in, to the workflow's end)",
                f"{slowest * 1000:.0f} ms", slowest <= HEALTH_LIMIT))  # fmt: skip
    at_1000 = [r.rss_mib for r in rows if r.runners == 1000]
    if at_1000:
        most = max(at_1000)
        out.append((f"1000 runners: server memory < {RSS_LIMIT_MIB} MiB in all",
                    f"{most:.0f} MiB", most < RSS_LIMIT_MIB))  # fmt: skip
    errors = sum(r.runner_failures + r.health_failures for r in rows)
    out.append(("no runner error, no failed health answer", str(errors), errors == 0))
    return out


def markdown(rows: list[Row], args: argparse.Namespace, limits: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    chain, fan, idle_fan = SIZES[args.quick]
    command = "    .venv/bin/python bench/runners.py --runners " + args.runners
    command += " --quick" if args.quick else ""
    command += " --plain" if args.plain else ""
    server = (
        f"the recommended plain gunicorn command (`gunicorn {' '.join(procs.PLAIN_GUNICORN[2:])}`)"
        if args.plain
        else "`stq server` (default settings)"
    )
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    table += ["| " + " | ".join(row) + " |" for row in table_rows(rows)]
    goals = ["| target | measured | met |", "|---|---|---|"]
    for goal, got, met in targets(rows):
        goals.append(f"| {goal} | {got} | {'yes' if met else '**no**'} |")
    return "\n\n".join([
        "# STQ with many connected runners",
        f"Measured {when} on {machine()}.",
        f"Each row: a fresh server, {server}, on SQLite, and N protocol-level "
        f"runners (`bench/swarm.py`, one asyncio process, one keep-alive connection each, "
        f"every attempt reported completed at once with `next`), all long-polling "
        f"before the submit. **chain**: {chain} tasks, each after the previous, all N "
        f"runners. **fan-out**: {fan} independent tasks, all N runners. **idle others**: "
        f"{idle_fan} independent tasks labelled `{WORK_LABEL}` that only {WORKING} runners "
        f"can take, while N-{WORKING} runners wait with `{IDLE_LABEL}`; \"vs 4 runners\" "
        f"is the wall against the same scenario with {WORKING} runners alone. Walls are "
        f"the store's submit commit to terminal commit; deadline {args.deadline:g} s per "
        f"scenario. Server CPU idle: the server's CPU (100% = one core) over {SETTLE:g} s "
        f"with every runner waiting and no work. Slowest health: the slowest `GET "
        f"/api/v1/health` on a new connection (`http.client`), asked every "
        f"{PROBE_EVERY:g} s by a separate process, once the server listed every runner "
        f"(`GET /api/v1/runners`: it had taken in their first claims) through the idle "
        f"wait and the workflow to its end, and apart from that while the N runners "
        f"connected and sent their first claims. RSS: gunicorn master and workers "
        f"at the end. Bench CPU: the runners' process (all N runners, the submit and the "
        f"store reads; 100% = one core) from the submit to the end: near 100% would mean "
        f"the runners, not the server, set the pace. Open-files limit of the server: "
        f"{limits}.",
        "\n".join(table),
        "## Targets\n\n" + "\n".join(goals),
        "Reproduce:\n\n" + command,
    ]) + "\n"  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", default="4,200,1000,2000",
                        help="comma-separated runner counts (default %(default)s)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smaller workflows, 60 s deadline")
    parser.add_argument("--deadline", type=float, help="seconds per scenario (default 120)")
    plain = "run the recommended plain gunicorn command, not stq server"
    parser.add_argument("--plain", action="store_true", help=plain)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.runners.split(",")]
    if any(c < WORKING for c in counts):
        parser.error(f"--runners: each count must be at least {WORKING}")
    args.deadline = args.deadline or (60.0 if args.quick else 120.0)
    soft, hard = raise_open_files()
    if max(counts) + 100 > soft:
        parser.error(f"--runners: open-files limit {soft} (hard {hard}) is too low")
    rows: list[Row] = []
    limits = set()
    with tempfile.TemporaryDirectory(prefix="stq-bench-runners-") as tmp:
        for n in counts:
            for name, doc, groups in plan(n, args.quick):
                row, limit = scenario(name, n, doc, groups, Path(tmp), args.deadline, args.plain)
                rows.append(row)
                limits.add(limit)
                print(f"  {n} runners, {name}: {row.result}", flush=True)
    print(text(rows))
    name = "runners" + ("-plain" if args.plain else "") + ("-quick" if args.quick else "")
    out = ROOT / "bench" / "results" / f"{name}.md"
    out.write_text(markdown(rows, args, ", ".join(sorted(limits))))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
