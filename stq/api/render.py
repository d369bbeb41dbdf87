"""Stored records -> JSON-ready dicts (the API's shapes, docs/api.md).

One place decides how the API spells things: times are ISO 8601 UTC with a
trailing 'Z', ids are strings, enums are their values, argv commands are lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stq.api import estimate
from stq.model import (
    Attempt,
    Claim,
    Command,
    ResultAck,
    Runner,
    Task,
    WaitingFor,
    WaitKind,
    Workflow,
)


def iso(ts: float | None) -> str | None:
    """POSIX seconds -> '2026-11-29T04:22:12.123Z' (millisecond precision), or None."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(enum: Any) -> Any:
    return None if enum is None else getattr(enum, "value", enum)


def command(cmd: Command) -> str | list[str]:
    """A shell string stays a string; an argv tuple becomes a JSON list."""
    return cmd if isinstance(cmd, str) else list(cmd)


def attempt(rec: Attempt) -> dict[str, Any]:
    return {
        "id": str(rec.id),
        "number": rec.number,
        "status": _value(rec.status),
        "runner": rec.runner,
        "started": iso(rec.started),
        "finished": iso(rec.finished),
        "exit_code": rec.exit_code,
        "reason": rec.reason,
    }


def task(rec: Task) -> dict[str, Any]:
    """A task as listed; ``attempts`` is added when the record carries them."""
    body: dict[str, Any] = {
        "id": str(rec.id),
        "workflow_id": str(rec.workflow_id),
        "name": rec.name,
        "state": _value(rec.state),
        "reason": _value(rec.reason),
        "depends_on": list(rec.depends_on),
        "attempts_used": rec.attempts_used,
        "attempts_this_round": rec.attempts_this_round,
        "max_attempts": rec.max_attempts,
        "priority": rec.priority,
        "labels": list(rec.labels),
        "duration": rec.duration,
        "command": command(rec.command),
        "created": iso(rec.created),
        "started": iso(rec.started),
        "finished": iso(rec.finished),
        "runner": rec.runner,
        "description": rec.description,
        "run_if": _value(rec.run_if),
        "matrix": None if rec.matrix is None else dict(rec.matrix),
        "matrix_of": rec.matrix_of,
    }
    body["waiting_for"] = waiting_for(rec.waiting_for)
    if rec.attempts is not None:
        body["attempts"] = [attempt(a) for a in rec.attempts]
    return body


def waiting_for(rec: WaitingFor | None) -> dict[str, Any] | None:
    """The API's ``waiting_for``: the kind and what it names."""
    if rec is None:
        return None
    if rec.kind == WaitKind.DEPENDENCIES:
        return {"kind": rec.kind.value, "tasks": list(rec.tasks), "more": rec.more}
    if rec.kind == WaitKind.RETRY_DELAY:
        return {"kind": rec.kind.value, "until": iso(rec.until)}
    if rec.kind == WaitKind.LABELS:
        return {"kind": rec.kind.value, "labels": list(rec.labels)}
    return {"kind": rec.kind.value}


def runner(rec: Runner) -> dict[str, Any]:
    return {
        "name": rec.name,
        "labels": list(rec.labels),
        "state": rec.state.value,
        "attempt_id": rec.attempt_id,
        "task_id": rec.task_id,
        "last_seen": iso(rec.last_seen),
    }


def workflow(rec: Workflow) -> dict[str, Any]:
    """A workflow as listed; ``tasks`` is added when the record carries them."""
    body: dict[str, Any] = {
        "id": str(rec.id),
        "name": rec.name,
        "description": rec.description,
        "state": _value(rec.state),
        "created": iso(rec.created),
        "finished": iso(rec.finished),
        "counts": {str(k): int(v) for k, v in rec.counts.items()},
        "params": dict(rec.params),
    }
    if rec.tasks is not None:
        body["tasks"] = [task(t) for t in rec.tasks]
    return body


def workflow_read(rec: Workflow, now: float) -> dict[str, Any]:
    """A workflow read alone: with its tasks it also carries ``time_left`` (seconds or null).

    Only an answer with every task can say: the estimate is made from them
    (``estimate.time_left``), so the list and ``?tasks=false`` do not carry it.
    """
    body = workflow(rec)
    if rec.tasks is not None:
        body["time_left"] = estimate.time_left(rec, now)
    return body


def submitted(rec: Workflow) -> dict[str, Any]:
    """The 201 answer to a submission: {id, name, state, tasks: [{id, name, state}]}."""
    return {
        "id": str(rec.id),
        "name": rec.name,
        "state": _value(rec.state),
        "tasks": [
            {"id": str(t.id), "name": t.name, "state": _value(t.state)} for t in rec.tasks or ()
        ],
    }


def claim(rec: Claim, heartbeat_interval: float) -> dict[str, Any]:
    return {
        "attempt_id": str(rec.attempt_id),
        "task_id": str(rec.task_id),
        "workflow_id": str(rec.workflow_id),
        "task_name": rec.task_name,
        "attempt_number": rec.attempt_number,
        "command": command(rec.command),
        "env": dict(rec.env),
        "cwd": rec.cwd,
        "duration": rec.duration,
        "heartbeat_interval": heartbeat_interval,
    }


def result_ack(rec: ResultAck) -> dict[str, Any]:
    return {"attempt_status": _value(rec.attempt_status), "task_state": _value(rec.task_state)}
