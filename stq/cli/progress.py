"""What people watch: live progress, the end-of-run summary and the status tables.

Shared by ``stq submit --wait``, ``stq run`` and ``stq status`` so they look the
same. On a terminal progress is one line redrawn in place; otherwise (CI logs)
it is a plain line each time the counts change. Anything that came from a
workflow file or a command (names, output) passes through ``safe`` first, so a
task cannot replay escape sequences on the user's terminal.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from stq.worker.client import Client

#: Seconds between readings of a running workflow. Each reads its summary (and, on a
#: terminal, the tasks in process), not every task: cheap whatever the workflow's size.
POLL_INTERVAL = 0.1
#: Seconds between readings of the time left, which only the workflow read with every
#: task carries (the server's estimate, the one the dashboard shows): on a terminal only,
#: and never more often than ESTIMATE_COST_SHARE times as long as the last reading took.
ESTIMATE_EVERY = 2.0
ESTIMATE_COST_SHARE = 20
#: Past this many tasks the line shows no time left: one reading of every task would
#: hold the line still for a second or more.
ESTIMATE_MAX_TASKS = 5000
#: Lines of a failed task's output shown in the summary.
TAIL_LINES = 15
#: Failed tasks whose last attempt is read to say why they failed. A workflow's task
#: list does not carry attempts, so each costs one request: past this many, the
#: REASON column points at ``stq logs`` instead.
MAX_REASONS_READ = 50

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ORDER = ("completed", "failed", "in_process", "todo")
#: A task state as every table and progress line writes it (one form everywhere).
SHOWN = {"todo": "to do", "in_process": "in process", "completed": "completed", "failed": "failed"}
#: The columns after a task's name (and id) in the run summary and in ``stq status ID``.
TASK_COLUMNS = ("STATE", "ATTEMPTS", "SECONDS", "REASON")
#: How those tables fit 80 columns: REASON gives way first, down to what the server's
#: own reasons need ("duration_exceeded"), then the name, then REASON again.
_GIVE_WAY = ((-1, len("duration_exceeded")), (0, 8), (-1, 8))


def safe(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters shown as ``\\xNN`` instead of acted upon."""
    pattern = _CONTROL if keep_newlines else _CONTROL_ALL
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int = 80,
    give_way: Sequence[tuple[int, int]] = ((0, 8),),
) -> str:
    """A plain text table no wider than ``width``.

    ``give_way`` says which columns are shortened when it is too wide, in
    order, each down to at most its minimum: by default the first column.
    """
    cells = [[safe("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for column, least in give_way:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess > 0:
            widths[column] = max(least, widths[column] - excess)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        fitted = [_fit(c, w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "~"


def terminal(counts: dict[str, int]) -> int:
    """Tasks that are done, one way or the other: completed and failed."""
    return counts.get("completed", 0) + counts.get("failed", 0)


def counts_line(counts: dict[str, int], skipped: int = 0) -> str:
    """'11/11 done: 7 completed (2 skipped), 4 failed': done counts every terminal task.

    A skipped task is completed (docs/workflow-file.md), so it is counted there; ``skipped``
    says how many of those never ran, when the caller read the tasks to know.
    """
    total = sum(counts.values())
    parts = [f"{counts.get(s, 0)} {SHOWN[s]}" for s in ORDER if counts.get(s)]
    if skipped and counts.get("completed"):
        parts[0] += f" ({skipped} skipped)"
    return f"{terminal(counts)}/{total} done: " + ", ".join(parts)


def skipped_count(wf: dict) -> int:
    """How many of a workflow's tasks its ``run_if`` skipped (0 when read without tasks)."""
    return sum(1 for t in wf.get("tasks") or () if is_skipped(t))


def is_skipped(task: dict) -> bool:
    """A completed task that never ran: an ``on_failure`` task whose dependencies all completed."""
    return task.get("state") == "completed" and task.get("reason") == "skipped"


def state_text(task: dict) -> str:
    """A task's state as tables write it; 'completed (skipped)' for one that never ran."""
    shown = SHOWN.get(task["state"], task["state"])
    return f"{shown} (skipped)" if is_skipped(task) else shown


def duration_text(seconds: float) -> str:
    """'45s', '2m 16s', '1h 05m': a duration as the dashboard writes it (``fmtDuration``)."""
    whole = max(0, math.floor(seconds + 0.5))  # rounded half up, as JavaScript's Math.round
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def time_left_text(wf: dict) -> str:
    """'~2m 16s': a running workflow's ``time_left`` (the server's estimate); '' without one."""
    left = wf.get("time_left")
    if wf.get("state") != "running" or not isinstance(left, int | float):
        return ""
    return "~" + duration_text(left)


def terminal_line(
    counts: dict[str, int], elapsed: float, left: str, running: list[str], skipped: int = 0
) -> str:
    """The line a terminal redraws: bar, elapsed time, time left, counts, tasks running.

    The time left comes before the counts, whose length varies, so that it is not
    the part an 80-column terminal cuts off.
    """
    total = max(1, sum(counts.values()))
    bar = "#" * (20 * terminal(counts) // total)
    text = f"[{bar:<20}] {elapsed:5.1f}s "
    if left:
        text += f"(time left {left}) "
    text += counts_line(counts, skipped)
    if running:
        text += " | running: " + ", ".join(safe(name) for name in running)
    return text


def workflow_state(wf: dict) -> str:
    """The workflow's state, and that it was cancelled when its tasks say so.

    The API has no cancelled state: a cancel fails every unfinished task with
    reason ``cancelled``, so a cancelled workflow reads ``failed`` unless its
    tasks are looked at (only a workflow read with its tasks can say).
    """
    cancelled = any(t.get("reason") == "cancelled" for t in wf.get("tasks") or ())
    return f"{wf['state']} (cancelled)" if wf["state"] == "failed" and cancelled else wf["state"]


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds between two API timestamps (ISO 8601 UTC), None when either is missing."""
    if not start or not end:
        return None
    return (_parse(end) - _parse(start)).total_seconds()


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class Progress:
    """Follows one workflow until it ends, drawing progress on ``out``."""

    #: ``ESTIMATE_MAX_TASKS``, per follower (a test lowers it).
    estimate_max_tasks = ESTIMATE_MAX_TASKS

    def __init__(self, client: Client, out: TextIO, tty: bool, clock=time.monotonic):
        self.client = client
        self.out = out
        self.tty = tty
        self.clock = clock
        self.started = clock()
        self._last = ""
        #: The last reading of the workflow with its tasks (for ``time_left``), and when
        #: (by ``clock``) the next one is due.
        self._estimate: dict = {}
        self._estimate_due = self.started

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
            self._draw(wf, self._running(workflow_id), self._time_left(wf))
            time.sleep(POLL_INTERVAL)

    def _running(self, workflow_id: str) -> list[dict]:
        """The tasks in process, which only the terminal's line shows."""
        return self.client.tasks(state="in_process", workflow=workflow_id) if self.tty else []

    def _time_left(self, summary: dict) -> str:
        """The server's time left, which only the terminal's line shows ('' when none).

        Only the workflow read with every task carries it, which costs the server
        far more than the ``summary``: it is read again every ``ESTIMATE_EVERY`` s
        at most, a big workflow's less often (by how long its reading took), and
        not at all past ``estimate_max_tasks`` tasks.
        """
        if not self.tty or sum((summary.get("counts") or {}).values()) > self.estimate_max_tasks:
            return ""
        asked = self.clock()
        if asked >= self._estimate_due:
            self._estimate = self.client.workflow(summary["id"])
            took = self.clock() - asked
            self._estimate_due = asked + max(ESTIMATE_EVERY, ESTIMATE_COST_SHARE * took)
        return time_left_text(self._estimate)

    def _draw(self, wf: dict, running_tasks: list[dict], left: str = "") -> None:
        elapsed = self.clock() - self.started
        counts = wf.get("counts") or {}
        skipped = skipped_count(wf)  # known only from the last reading, which has every task
        line = counts_line(counts, skipped)
        if not self.tty:
            if line != self._last:
                self.out.write(f"[{elapsed:6.1f}s] {line}\n")
                self.out.flush()
                self._last = line
            return
        text = terminal_line(counts, elapsed, left, [t["name"] for t in running_tasks], skipped)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.out.write("\r\x1b[K" + text[:width])
        self.out.flush()


def summary(client: Client, wf: dict, out: TextIO) -> None:
    """The end-of-run table, then the tail of each failed task's last attempt."""
    tasks = wf.get("tasks") or []
    lasts = last_failed_attempts(client, tasks)
    rows = [(t["name"], *_task_cells(t, lasts)) for t in tasks]
    out.write(table(("TASK", *TASK_COLUMNS), rows, give_way=_GIVE_WAY) + "\n")
    for t in tasks:
        if t["id"] in lasts:
            out.write(failed_tail(client, t, lasts[t["id"]]))
    out.write(f"workflow {safe(wf['name'])} ({wf['id']}): {workflow_state(wf)}\n")
    out.flush()


def last_failed_attempts(
    client: Client, tasks: Sequence[dict], limit: int = MAX_REASONS_READ
) -> dict[str, dict]:
    """The last attempt of each failed task that ran, by task id.

    A workflow's task list carries no attempts, so the reason and exit code
    an attempt ended with, and the attempt whose output the summary shows,
    cost one read of its task: the first ``limit`` such tasks are read.
    """
    failed = [t for t in tasks if t["state"] == "failed" and t.get("attempts_used")]
    lasts = {}
    for task in failed[:limit]:
        attempts = client.task(task["id"]).get("attempts") or []
        if attempts:
            lasts[task["id"]] = attempts[-1]
    return lasts


def reason_text(task: dict, last: dict | None) -> str:
    """Why a task ended as it did: its own reason, else its last attempt's, else its exit code.

    ``last`` is None for a failed task whose attempts were not read (past
    ``MAX_REASONS_READ``): the column then says where to look.
    """
    if is_skipped(task):
        return ""  # its state says so: 'completed (skipped)'
    if task.get("reason"):
        return str(task["reason"])
    if task["state"] != "failed":
        return ""
    if last is None:
        return "see stq logs"
    if last.get("reason"):
        return str(last["reason"])
    if last.get("exit_code") is not None:
        return f"exit code {last['exit_code']}"
    return str(last.get("status") or "")


def attempts_cell(task: dict) -> str:
    """Attempts in all, and after a retry how many of them are since (its fresh budget)."""
    total = task.get("attempts_used", 0)
    this_round = task.get("attempts_this_round", total)
    return str(total) if this_round == total else f"{total} ({this_round} since retry)"


def _task_cells(task: dict, lasts: dict[str, dict]) -> tuple[str, Any, str, str]:
    """The ``TASK_COLUMNS`` cells of one task, the same in every task table."""
    return (
        state_text(task),
        attempts_cell(task),
        _secs(seconds_between(task.get("started"), task.get("finished"))),
        reason_text(task, lasts.get(task["id"])),
    )


def failed_tail(client: Client, task: dict, last: dict) -> str:
    """The last lines of the task's last attempt (``last``) output, and why it failed."""
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


def workflow_head(wf: dict) -> str:
    """``stq status ID``'s first line: the workflow, its state and its counts."""
    return (
        f"workflow {safe(wf['name'])} ({wf['id']}): {workflow_state(wf)}, "
        f"{counts_line(wf['counts'], skipped_count(wf))}"
    )


def task_table(wf: dict, lasts: dict[str, dict]) -> str:
    """``stq status ID``: one workflow's tasks with state, attempts, timings and reasons.

    ``lasts`` is ``last_failed_attempts`` of its tasks: what the REASON column
    says of a task failed by its own attempt.
    """
    rows = [(t["name"], t["id"], *_task_cells(t, lasts)) for t in wf.get("tasks") or []]
    return table(("TASK", "TASK ID", *TASK_COLUMNS), rows, give_way=_GIVE_WAY)


def _done(counts: dict[str, int]) -> str:
    """'11/11 (4 failed)': terminal tasks of all, and how many of them failed."""
    failed = counts.get("failed", 0)
    return f"{terminal(counts)}/{sum(counts.values())}" + (f" ({failed} failed)" if failed else "")


def _short_time(stamp: str | None) -> str:
    """'2026-11-29T04:22:12.123Z' -> '11-29 04:22:12' (UTC): fits the table."""
    return "" if not stamp else stamp[5:19].replace("T", " ")
