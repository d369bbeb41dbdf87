"""What people watch: live progress, the end-of-run summary and the status tables.

Shared by ``stq submit --wait``, ``stq run`` and ``stq status`` so they look the
same. On a terminal progress is one line redrawn in place; otherwise (CI logs)
it is a plain line each time the counts change. Anything that came from a
workflow file or a command (names, output) passes through ``safe`` first, so a
task cannot replay escape sequences on the user's terminal.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from stq.client import Client

#: Seconds between readings of a running workflow. Each reads its summary (and, on a
#: terminal, the tasks in process), not every task: cheap whatever the workflow's size.
POLL_INTERVAL = 0.1
#: Lines of a failed task's output shown in the summary.
TAIL_LINES = 15

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ORDER = ("completed", "failed", "in_process", "todo")
SHOWN = {"todo": "To Do", "in_process": "In Process", "completed": "Completed", "failed": "Failed"}


def safe(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as ``\\xNN`` instead of acted upon."""
    pattern = _CONTROL if keep_newlines else _CONTROL_ALL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 80) -> str:
    """A plain text table no wider than ``width``; the first column gives way first."""
    cells = [[safe("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    if excess > 0:
        widths[0] = max(8, widths[0] - excess)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        fitted = [_fit(c, w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "~"


def counts_line(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"{counts.get(s, 0)} {SHOWN[s].lower()}" for s in ORDER if counts.get(s)]
    return f"{counts.get('completed', 0)}/{total} done: " + ", ".join(parts)


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds between two API timestamps (ISO 8601 UTC), None when either is missing."""
    if not start or not end:
        return None
    return (_parse(end) - _parse(start)).total_seconds()


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class Progress:
    """Follows one workflow until it ends, drawing progress on ``out``."""

    def __init__(self, client: Client, out: TextIO, tty: bool, clock=time.monotonic):
        self.client = client
        self.out = out
        self.tty = tty
        self.clock = clock
        self.started = clock()
        self._last = ""

    def follow(self, workflow_id: str, stop: Callable[[], bool] = lambda: False) -> dict:
        """Poll until the workflow is no longer running (or ``stop()``); its last reading.

        While it runs only the summary is read: a whole 2,000-task workflow
        every half second cost the server as much CPU as a fifth of the tasks.
        The last reading, which the summary after the run needs, has every task.
        """
        while True:
            wf = self.client.workflow(workflow_id, tasks=False)
            if wf["state"] != "running" or stop():
                wf = self.client.workflow(workflow_id)
                self._draw(wf, [])
                if self.tty:
                    self.out.write("\n")
                    self.out.flush()
                return wf
            self._draw(wf, self._running(workflow_id))
            time.sleep(POLL_INTERVAL)

    def _running(self, workflow_id: str) -> list[dict]:
        """The tasks in process, which only the terminal's line shows."""
        return self.client.tasks(state="in_process", workflow=workflow_id) if self.tty else []

    def _draw(self, wf: dict, running_tasks: list[dict]) -> None:
        elapsed = self.clock() - self.started
        counts = wf.get("counts") or {}
        line = counts_line(counts)
        if not self.tty:
            if line != self._last:
                self.out.write(f"[{elapsed:6.1f}s] {line}\n")
                self.out.flush()
                self._last = line
            return
        total = max(1, sum(counts.values()))
        done = counts.get("completed", 0) + counts.get("failed", 0)
        bar = "#" * (20 * done // total)
        running = [safe(t["name"]) for t in running_tasks]
        text = f"[{bar:<20}] {elapsed:5.1f}s {line}"
        if running:
            text += " | running: " + ", ".join(running)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.out.write("\r\x1b[K" + text[:width])
        self.out.flush()


def summary(client: Client, wf: dict, out: TextIO) -> None:
    """The end-of-run table, then the tail of each failed task's last attempt."""
    tasks = wf.get("tasks") or []
    rows = [
        (
            t["name"],
            SHOWN.get(t["state"], t["state"]),
            t.get("attempts_used", 0),
            _secs(seconds_between(t.get("started"), t.get("finished"))),
            t.get("reason") or "",
        )
        for t in tasks
    ]
    out.write(table(("TASK", "STATE", "ATTEMPTS", "SECONDS", "REASON"), rows) + "\n")
    for t in tasks:
        if t["state"] == "failed" and t.get("attempts_used"):
            out.write(failed_tail(client, t))
    out.write(f"workflow {safe(wf['name'])} ({wf['id']}): {wf['state']}\n")
    out.flush()


def failed_tail(client: Client, task: dict) -> str:
    """The last lines of the task's last attempt's output, and why it failed."""
    detail = client.task(task["id"])
    attempts = detail.get("attempts") or []
    if not attempts:
        return ""
    last = attempts[-1]
    text = client.output(last["id"])
    lines = text.splitlines()[-TAIL_LINES:]
    head = f"\n--- {safe(task['name'])}: attempt {last['number']} {last['status']}"
    if last.get("exit_code") is not None:
        head += f", exit code {last['exit_code']}"
    if last.get("reason") and "exit code" not in last["reason"]:
        head += f" ({safe(last['reason'])})"
    body = "".join(f"    {safe(line)}\n" for line in lines) or "    (no output)\n"
    return f"{head} ---\n{body}"


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def workflow_table(workflows: Sequence[dict]) -> str:
    """``stq status``: the workflows, newest first, in 80 columns."""
    if not workflows:
        return "no workflows yet: stq submit FILE"
    rows = [
        (
            w["name"],
            w["id"],
            w["state"],
            _done(w.get("counts") or {}),
            _short_time(w.get("created")),
        )
        for w in workflows
    ]
    return table(("NAME", "ID", "STATE", "DONE", "CREATED"), rows)


def task_table(wf: dict) -> str:
    """``stq status ID``: one workflow's tasks with state, attempts and timings."""
    rows = [
        (
            t["name"],
            t["id"],
            SHOWN.get(t["state"], t["state"]) + (f" ({t['reason']})" if t.get("reason") else ""),
            t.get("attempts_used", 0),
            _secs(seconds_between(t.get("started"), t.get("finished"))),
        )
        for t in wf.get("tasks") or []
    ]
    head = f"workflow {safe(wf['name'])} ({wf['id']}): {wf['state']}, {counts_line(wf['counts'])}"
    return head + "\n" + table(("TASK", "TASK ID", "STATE", "TRIES", "SECONDS"), rows)


def _done(counts: dict[str, int]) -> str:
    return f"{counts.get('completed', 0)}/{sum(counts.values())}"


def _short_time(stamp: str | None) -> str:
    """'2026-11-29T04:22:12.123Z' -> '11-29 04:22:12' (UTC): fits the table."""
    return "" if not stamp else stamp[5:19].replace("T", " ")
