"""The results as one table (terminal and Markdown) and a PNG chart.

Every target is printed with the measured value and whether it is met. The
speed floors are ratios to GNU make measured in the same run (absolute
figures move 2-4x between hosts); the absolute targets are those of the
2-core machine the project was first measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.scale import Scale


@dataclass
class Results:
    """Measured seconds per (workload, system): every repetition kept."""

    sizes: dict[str, int]
    walls: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    commands: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    scale: Scale | None = None
    recovery: float | None = None
    recovery_timeout: float = 60.0
    notes: list[str] = field(default_factory=list)

    def median(self, workload: str, system: str) -> float:
        return statistics.median(self.walls[workload, system])


def machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    )  # fmt: skip
    python = platform.python_version()
    return f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {python}"


def workload_rows(res: Results, systems: list[str]) -> list[list[str]]:
    rows = []
    for workload, n in res.sizes.items():
        make = res.median(workload, "GNU make -j4")
        for system in systems:
            wall = res.median(workload, system)
            hop = f"{wall * 1000 / (n - 1):.2f}" if "chain" in workload else ""
            whole = res.commands.get(workload) if system == "stq run -j 4" else None
            cpus = res.cpus.get((workload, system))
            rows.append([
                workload, system, f"{wall:.2f}", f"{n / wall:,.0f}", hop, f"{wall / make:.1f}x",
                f"{statistics.median(cpus) * 1000 / n:.2f}" if cpus else "",
                f"{statistics.median(whole):.2f}" if whole else "",
            ])  # fmt: skip
    return rows


HEADER = [
    "workload", "system", "wall (s)", "tasks/s", "ms/hop", "vs make", "CPU ms/task",
    "whole command (s)",
]  # fmt: skip


#: (system, W1 and W3 rate at least this times make's, W2 hop at most this times make's).
FLOORS = [("STQ server + 4 runners", 0.40, 2.9), ("plain gunicorn + 4 runners", 0.36, 3.4)]


def floors(res: Results) -> list[tuple[str, str, bool]]:
    """The speed floors: each server's rate and hop against make's in the same run."""
    out = []
    w1, w2, w3 = list(res.sizes)
    make = "GNU make -j4"
    for system, rate_floor, hop_ceiling in FLOORS:
        if (w1, system) not in res.walls:
            continue
        for w in (w1, w3):
            ratio = res.median(w, make) / res.median(w, system)
            out.append((f"{system}, {w}: rate >= {rate_floor}x make's",
                        _with_spread(ratio, res.walls[w, make], res.walls[w, system]),
                        ratio >= rate_floor))  # fmt: skip
        ratio = res.median(w2, system) / res.median(w2, make)
        out.append((f"{system}, {w2}: hop <= {hop_ceiling}x make's",
                    _with_spread(ratio, res.walls[w2, system], res.walls[w2, make]),
                    ratio <= hop_ceiling))  # fmt: skip
    return out


def _with_spread(ratio: float, tops: list[float], bottoms: list[float]) -> str:
    """The ratio of medians, and the lowest and highest ratio of a single repetition.

    On a shared 2-core machine one repetition's ratio can stray a fifth either
    way from the next one's: the range says how far a floor is from that noise.
    """
    each = [top / bottom for top, bottom in zip(tops, bottoms, strict=True)]
    if len(each) < 2:
        return f"{ratio:.2f}x"
    return f"{ratio:.2f}x (repetitions {min(each):.2f}-{max(each):.2f}x)"


def targets(res: Results) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target."""
    out = floors(res)
    w1, w2, w3 = list(res.sizes)
    server = "STQ server + 4 runners"
    rate = res.sizes[w1] / res.median(w1, server)
    out.append(("W1 >= 1,000 tasks/s", f"{rate:,.0f} tasks/s", rate >= 1000))
    rate = res.sizes[w3] / res.median(w3, server)
    out.append(("W3 >= 600 tasks/s", f"{rate:,.0f} tasks/s", rate >= 600))
    hop = res.median(w2, server) * 1000 / (res.sizes[w2] - 1)
    out.append(("W2 <= 2.2 ms/hop", f"{hop:.2f} ms/hop", hop <= 2.2))
    for w in res.sizes:
        ratio = res.median(w, "stq run -j 4") / res.median(w, server)
        out.append((f"{w}: stq run within 1.3x", f"{ratio:.2f}x", ratio <= 1.3))
    if res.scale:
        out += scale_targets(res.scale)
    if res.recovery is not None:
        out.append((
            f"dead runner restarted within 60 s (timeout {res.recovery_timeout:g} s)",
            f"{res.recovery:.1f} s", res.recovery <= 60,
        ))  # fmt: skip
    return out


def scale_targets(s: Scale) -> list[tuple[str, str, bool]]:
    small, large = s.claim_ms[1_000], s.claim_ms[s.tasks]
    rss = max(s.rss_mib.values())
    return [
        (f"validate {s.tasks:,} tasks < 10 s", f"{s.validate:.1f} s", s.validate < 10),
        (f"submit {s.tasks:,} tasks < 10 s", f"{s.submit:.1f} s", s.submit < 10),
        (
            f"validate {s.tasks:,} matrix-made tasks < 10 s",
            f"{s.matrix_validate:.1f} s",
            s.matrix_validate < 10,
        ),
        (
            f"submit {s.tasks:,} matrix-made tasks < 10 s",
            f"{s.matrix_submit:.1f} s",
            s.matrix_submit < 10,
        ),
        (
            f"claim at {s.tasks:,} within 1.5x of at 1,000",
            f"{large:.2f} ms vs {small:.2f} ms ({large / small:.2f}x)",
            large <= 1.5 * small,
        ),
        ("< 200 MiB per server process", f"max {rss:.0f} MiB", rss < 200),
    ]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _repetitions(res: Results) -> int:
    """How many times each workload ran on each system."""
    return max((len(walls) for walls in res.walls.values()), default=0)


def markdown(res: Results, systems: list[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# STQ benchmark results",
        f"Measured {when} on {machine()}.",
        f"Medians of {_repetitions(res)} repetition(s) (scale: of its validates and submits), "
        "systems alternating within each repetition. STQ walls "
        "are from the workflow's submit (the store's commit of it) to its terminal commit, "
        "with the server and runners already started and idle; `stq run`'s whole command "
        "(server and runner start-up and shutdown included) is in the last column. make's "
        "wall is its whole command. Durability: the default server settings (SQLite WAL, "
        "`synchronous=NORMAL`, every state change one committed transaction). CPU ms/task: "
        "user + system CPU of the server's processes, the runners and the commands they ran "
        "(make: make and its commands), per task; unlike wall time it hardly depends on "
        "what else the machine runs.",
        _md_table(HEADER, workload_rows(res, systems)),
        "## Targets",
        _md_table(["target", "measured", "met"],
                  [[t, m, "yes" if ok else "**no**"] for t, m, ok in targets(res)]),
    ]  # fmt: skip
    if res.scale:
        rss = [[k, f"{v:.0f}"] for k, v in res.scale.rss_mib.items()]
        parts += ["## Peak RSS per server process (MiB)", _md_table(["process", "MiB"], rss)]
    parts += [f"- {note}" for note in res.notes]
    return "\n\n".join(parts) + "\n"


def text(res: Results, systems: list[str]) -> str:
    rows = [HEADER, *workload_rows(res, systems)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("")
    lines += [f"{'MET ' if ok else 'MISS'}  {t}: {m}" for t, m, ok in targets(res)]
    return "\n".join(lines)


def chart(res: Results, systems: list[str], path: Path) -> None:
    """Grouped bars: tasks/s per workload and system (small PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    width = 0.8 / len(systems)
    for j, system in enumerate(systems):
        rates = [n / res.median(w, system) for w, n in res.sizes.items()]
        xs = [i + j * width for i in range(len(res.sizes))]
        ax.bar(xs, rates, width, label=system)
    ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(res.sizes))])
    ax.set_xticklabels(list(res.sizes))
    ax.set_ylabel("tasks/s (higher is better)")
    ax.set_title("STQ vs GNU make, 4 parallel workers, tasks of `true`")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
