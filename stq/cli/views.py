"""Words for what the server knows beyond states: waits, runners, params, descriptions.

Pure functions over the API's JSON (The API's ``waiting_for``, a task's
``description`` and ``run_if``, a workflow's ``params`` and ``GET /runners``),
shared by ``stq status``, ``stq logs`` and ``stq runners`` so a wait reads
the same wherever it is shown. Anything that came from a workflow file or a
runner (task names, labels, runner names, descriptions, values) passes
through ``safe``, as in every other table.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stq.cli.progress import safe, table

#: How far back the server lists runners and looks for one with a task's labels.
SEEN_WINDOW = "the last 10 minutes"


def wait_text(waiting_for: dict[str, Any] | None) -> str | None:
    """Why a ``todo`` task has not started, in words; None when the server did not say.

    A kind this version does not know (a newer server) is named as it is
    rather than dropped, so the user still sees that the task waits.
    """
    if not waiting_for:
        return None
    kind = waiting_for.get("kind")
    if kind == "dependencies":
        return _dependencies(waiting_for.get("tasks") or [], waiting_for.get("more") or 0)
    if kind == "retry_delay":
        return f"retry delay until {clock_time(waiting_for.get('until'))}"
    if kind == "labels":
        labels = ", ".join(safe(str(x)) for x in waiting_for.get("labels") or [])
        return f"waits for a runner with labels {labels} (none seen in {SEEN_WINDOW})"
    if kind == "runner":
        return "waits for a free runner"
    return f"waits ({safe(str(kind))})"


def _dependencies(names: Sequence[str], more: int) -> str:
    text = "waits for " + ", ".join(safe(str(name)) for name in names)
    return f"{text} (+{more} more)" if more else text


def clock_time(stamp: str | None) -> str:
    """An API timestamp as this machine's local ``HH:MM:SS``; the stamp as it is if odd."""
    if not stamp:
        return "an unknown time"
    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return safe(str(stamp))


def waits_table(tasks: Sequence[dict[str, Any]]) -> str:
    """``stq status ID``'s second table: each task to do and why it waits.

    Empty when no task waits, or when the server is older than ``waiting_for``
    and so does not say. The reason is never shortened to fit 80 columns: it
    is the point of the table (``--json`` has the full lists too).
    """
    rows = [
        (t["name"], text)
        for t in tasks
        if t.get("state") == "todo" and (text := wait_text(t.get("waiting_for")))
    ]
    return table(("WAITING TASK", "WHY"), rows) if rows else ""


def params_line(params: Mapping[str, Any] | None) -> str:
    """'params: BRANCH=main DAY=2026-12-06': a workflow's final params; '' when it has none.

    Each is written as ``--param`` takes it (a value with spaces quoted as the
    shell would), so a line can be copied into the next ``stq submit``.
    """
    if not params:
        return ""
    pairs = (f"{name}={shlex.quote(str(value))}" for name, value in params.items())
    return "params: " + " ".join(safe(pair) for pair in pairs)


#: The narrowest a description is wrapped to, however long the task names are.
DESCRIPTION_MIN_WIDTH = 30


def details_table(tasks: Sequence[dict[str, Any]], width: int = 80) -> str:
    """``stq status ID``'s table of what the file says about its tasks beyond commands.

    One row per task that has a ``description`` or runs on another condition
    than the default (``run_if`` ``on_failure`` or ``always``); the expansions
    of a matrix task, which share both, are one row named ``NAME-*``. A column
    only when some task fills it; '' when no task does. A description is never
    cut: it is wrapped to the width left beside the other columns.
    """
    rows: list[tuple[str, str, str]] = []
    shown_matrices: set[str] = set()
    for t in tasks:
        if not (t.get("description") or _run_if(t)) or t.get("matrix_of") in shown_matrices:
            continue
        name = t["name"]
        if t.get("matrix_of"):
            shown_matrices.add(t["matrix_of"])
            name = f"{t['matrix_of']}-*"
        rows.append((name, _run_if(t), safe(" ".join(str(t.get("description") or "").split()))))
    if not rows:
        return ""
    keep = [0] + [i for i in (1, 2) if any(row[i] for row in rows)]
    headers = [("TASK", "RUN IF", "DESCRIPTION")[i] for i in keep]
    cells = [[row[i] for i in keep] for row in rows]
    if keep[-1] == 2:
        cells = _wrapped_last(headers, cells, width)
    return table(headers, cells, width=width)


def _run_if(task: dict[str, Any]) -> str:
    """The task's ``run_if`` when it is not the default (``on_success``), else ''."""
    run_if = task.get("run_if")
    return "" if run_if in (None, "on_success") else str(run_if)


def _wrapped_last(headers: Sequence[str], rows: list[list[str]], width: int) -> list[list[str]]:
    """Rows whose last cell is wrapped to the width the other columns leave, over extra rows."""
    before = sum(
        max([len(head)] + [len(safe(row[i])) for row in rows]) + 2
        for i, head in enumerate(headers[:-1])
    )
    room = max(DESCRIPTION_MIN_WIDTH, width - before)
    out = []
    for row in rows:
        lines = textwrap.wrap(row[-1], room, break_on_hyphens=False) or [""]
        out.append([*row[:-1], lines[0]])
        out += [[""] * (len(row) - 1) + [line] for line in lines[1:]]
    return out


def no_attempts(task: dict[str, Any]) -> str:
    """Why a task has no attempt, and what to do: only a waiting task will get one."""
    head = f"task {task['id']} has no attempts"
    retry = f"stq retry {task['workflow_id']} runs it again"
    reason = task.get("reason")
    if reason == "upstream_failed":
        return f"{head} and will get none: a task it depends on failed ({retry})"
    if reason == "cancelled":
        return f"{head}: its workflow was cancelled before it ran ({retry})"
    if reason == "skipped":
        return f"{head} and will get none: it was skipped, as its run_if says"
    wait = wait_text(task.get("waiting_for"))
    if wait is not None:
        return f"{head} yet: {wait}"
    if task.get("state") == "todo":  # a server that does not say why
        return f"{head} yet: it waits for its dependencies or a runner"
    return f"{head}: it is {safe(str(task.get('state')))}"


def runners_table(runners: Sequence[dict[str, Any]], now: datetime | None = None) -> str:
    """``stq runners``: name, labels, state, current task and when each was last seen."""
    if not runners:
        return f"no runners seen in {SEEN_WINDOW}: start one with stq worker URL"
    now = now or datetime.now(UTC)
    rows = [
        (
            r["name"],
            ",".join(r.get("labels") or []) or "-",
            r["state"],
            r.get("task_id") if r["state"] == "busy" and r.get("task_id") else "-",
            ago(r.get("last_seen"), now),
        )
        for r in runners
    ]
    return table(("NAME", "LABELS", "STATE", "TASK", "LAST SEEN"), rows)


def ago(stamp: str | None, now: datetime) -> str:
    """How long before ``now`` an API timestamp was: '3s ago', '4m 10s ago', '2h 5m ago'.

    A stamp a little ahead of this machine's clock (the server's clock runs
    ahead) reads '0s ago' rather than a negative age.
    """
    try:
        seconds = int(max(0.0, (now - datetime.fromisoformat(str(stamp))).total_seconds()))
    except (ValueError, TypeError):  # missing, or naive and so not comparable
        return "-"
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s ago"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m ago"
