"""``stq logs``: an attempt's output, once, or followed live with ``-f``.

Following reads the output from the byte it reached, every ``POLL`` seconds,
so a line a command prints shows within about two seconds (the runner sends
output every second); it goes on to each newer attempt as the task is retried
and stops, with exit code 0, once the task is terminal. Output goes to
stdout as the command printed it; what the user should know about an attempt
(still running, why it ended) goes to stderr, one line each.

With ``--json`` stdout carries JSON objects instead, one per line: the whole
output once, or (following) each part as it arrives and a last one when the
attempt ends, each saying which attempt, its status and the byte offset
where its text starts. The notes on stderr stay as they are.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from stq.cli.progress import safe
from stq.cli.views import no_attempts, wait_text
from stq.errors import StqError

if TYPE_CHECKING:
    from stq.worker.client import Client

#: Seconds between two reads while following.
POLL = 0.5
TERMINAL = ("completed", "failed")


class Text:
    """Output as the command printed it (escaped on a terminal)."""

    def __init__(self, out: IO[str]):
        self.out = out

    def part(self, attempt: dict[str, Any], text: str, start: int, status: str) -> None:
        _write(self.out, text)


class Json:
    """Output as JSON objects, one a line: ``{attempt_id, number, status, output, output_start}``.

    A part with no text is still written when it tells something new: the
    status an attempt ended with.
    """

    def __init__(self, out: IO[str]):
        self.out = out

    def part(self, attempt: dict[str, Any], text: str, start: int, status: str) -> None:
        if not text and status == "running":
            return
        self.out.write(json.dumps(output_json(attempt, text, start, status)) + "\n")
        self.out.flush()


def output_json(attempt: dict[str, Any], text: str, start: int, status: str) -> dict[str, Any]:
    """What ``stq logs --json`` prints of an attempt: its output from byte ``start`` on."""
    return {
        "attempt_id": attempt["id"],
        "number": attempt["number"],
        "status": status,
        "output": text,
        "output_start": start,
    }


Sink = Text | Json


def show(client: Client, task: dict[str, Any], number: int | None, sink: Sink) -> None:
    """Print one attempt's output (``number``, or the last) and a line on how it stands."""
    attempt = pick(task, number)
    part = client.output_from(attempt["id"], 0)
    sink.part(attempt, part.text, part.start, attempt.get("status") or "running")
    note = ending(attempt)
    if attempt.get("status") == "running":
        note = f"attempt {attempt['number']} is still running: stq logs -f follows it"
    if note:
        sink.out.flush()
        print(f"stq: {note}", file=sys.stderr)


def follow(client: Client, task: dict[str, Any], number: int | None, sink: Sink) -> None:
    """Print the task's output as it comes, attempt after attempt, until the task ends."""
    task_id = task["id"]
    current = pick(task, number) if task.get("attempts") else None
    offset = 0
    told_wait = None
    while True:
        if current is None:
            if task["state"] in TERMINAL:
                tell_why_none(task)
                return
            why = wait_text(task.get("waiting_for")) or "waiting for an attempt to start"
            if why != told_wait:
                print(f"stq: task {task_id} {why}", file=sys.stderr)
                told_wait = why
            time.sleep(POLL)
            task = client.task(task_id)
            current = _first_after(task, 0)
            continue
        part = client.output_from(current["id"], offset)
        start = max(offset, part.start)
        if part.start > offset:
            print(f"stq: ({part.start - offset} bytes not kept)", file=sys.stderr)
        offset = part.end
        if not part.finished:
            sink.part(current, part.text, start, "running")
            time.sleep(POLL)
            continue
        task = client.task(task_id)
        ended = next(a for a in task["attempts"] if a["id"] == current["id"])
        sink.part(ended, part.text, start, ended["status"])
        if note := ending(ended):
            sink.out.flush()
            print(f"stq: {note}", file=sys.stderr)
        if number is not None:
            return
        newer = _first_after(task, ended["number"])
        if newer is None and task["state"] in TERMINAL:
            return
        current, offset = newer, 0
        if current is None:
            time.sleep(POLL)
            task = client.task(task_id)
            current = _first_after(task, ended["number"])


def pick(task: dict[str, Any], number: int | None) -> dict[str, Any]:
    """The attempt shown: number ``number``, or the last; one clear error if none."""
    attempts = task.get("attempts") or []
    if number is not None:
        attempts = [a for a in attempts if a["number"] == number]
        if not attempts:
            raise StqError(f"task {task['id']} has no attempt {number}: see stq status")
    if not attempts:
        raise StqError(no_attempts(task))
    return attempts[-1]


def tell_why_none(task: dict[str, Any]) -> None:
    """A terminal task that never ran: say why on stderr (following ends with 0)."""
    print(f"stq: {no_attempts(task)}", file=sys.stderr)


def ending(attempt: dict[str, Any]) -> str | None:
    """Why an ended attempt did not complete, in one line; None if it completed or runs."""
    status = attempt.get("status")
    if status in (None, "running", "completed"):
        return None
    reason = attempt.get("reason")
    code = attempt.get("exit_code")
    why = {
        "cancelled": "it was cancelled",
        "duration_exceeded": "it ran past its duration",
        "heartbeat_lost": "its runner stopped sending heartbeats",
    }.get(str(reason))
    if why is None:
        why = f"exit code {code}" if code is not None else safe(str(reason or status))
    return f"attempt {attempt['number']} {status}: {why}"


def _first_after(task: dict[str, Any], number: int) -> dict[str, Any] | None:
    later = [a for a in task.get("attempts") or [] if a["number"] > number]
    return later[0] if later else None


def _write(out: IO[str], text: str) -> None:
    out.write(safe(text, keep_newlines=True) if out.isatty() else text)
    out.flush()
