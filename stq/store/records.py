"""Ids and rows: how stored rows become the records of ``stq.model``.

Rows are read with the column lists of queries/records.sql, in their order.
Ids are opaque strings to everyone else; here they are a one-letter prefix and
the row's AUTOINCREMENT integer (``w12``, ``t345``, ``a6``), so they are never
reused after a delete. A malformed id, or one with the wrong prefix, is simply
unknown (``NotFound``), never a 400 or a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from stq.errors import NotFound
from stq.model import (
    Attempt,
    AttemptStatus,
    Command,
    RunIf,
    Task,
    TaskReason,
    TaskSpec,
    TaskState,
    Workflow,
    WorkflowState,
)

_ID = re.compile(r"([wta])([1-9][0-9]{0,17})")
_NOUN = {"w": "workflow", "t": "task", "a": "attempt"}

#: ``run_if`` as read: looked up, a twentieth of the enum call, for 100,000-task reads.
_RUN_IF = {r.value: r for r in RunIf}


def make_id(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


def parse_id(prefix: str, text: object) -> int:
    """The row id inside ``text``; ``NotFound`` when it is not a ``prefix`` id."""
    match = _ID.fullmatch(text) if isinstance(text, str) else None
    if match is None or match.group(1) != prefix:
        raise NotFound(f"No {_NOUN[prefix]} with id {text!r}")
    return int(match.group(2))


def not_found(prefix: str, number: int) -> NotFound:
    return NotFound(f"No {_NOUN[prefix]} with id {make_id(prefix, number)!r}")


def dump_strings(items: Iterable[str]) -> str:
    """``json.dumps`` of a list of strings, the same text, for a fraction of the time.

    ``json.dumps`` builds a new encoder for every list it is given; a
    100,000-task submit encodes 100,000 dependency lists, where that was a
    tenth of the store's time. Only the string escaping ``json.dumps`` itself
    uses is called here.
    """
    return "[" + ", ".join(map(_json_string, items)) + "]"


def dump_command(command: Command) -> str:
    return _json_string(command) if isinstance(command, str) else dump_strings(command)


def load_command(text: str) -> Command:
    value = json.loads(text)
    return value if isinstance(value, str) else tuple(value)


def dump_labels(labels: Sequence[str]) -> str | None:
    """NULL for no labels, so unlabelled tasks use their own partial index."""
    return json.dumps(sorted(set(labels))) if labels else None


def load_labels(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def dump_mapping(values: Mapping[str, str] | None) -> str | None:
    """A mapping of strings as ``json.dumps`` writes it (keys in their order); NULL for none.

    For params and matrix values: a 100,000-task submit may carry a matrix on
    every task, and this costs a fraction of ``json.dumps`` (see ``dump_strings``).
    """
    if not values:
        return None
    items = (f"{_json_string(k)}: {_json_string(v)}" for k, v in values.items())
    return "{" + ", ".join(items) + "}"


def load_mapping(text: str | None) -> dict[str, str] | None:
    return json.loads(text) if text else None


def counts_from(values: Sequence[int]) -> dict[str, int]:
    """Counts per task state from the four n_* columns, in ``TaskState`` order."""
    return {state.value: int(n or 0) for state, n in zip(TaskState, values, strict=True)}


def workflow_from_row(row: Sequence[Any], tasks: tuple[Task, ...] | None = None) -> Workflow:
    return Workflow(
        id=make_id("w", row[0]),
        name=row[1],
        description=row[2],
        state=WorkflowState(row[3]),
        created=row[4],
        finished=row[5],
        counts=counts_from(row[6:10]),
        tasks=tasks,
        params=load_mapping(row[10]) or {},
    )


def task_from_row(row: Sequence[Any], attempts: tuple[Attempt, ...] | None = None) -> Task:
    return Task(
        id=make_id("t", row[0]),
        workflow_id=make_id("w", row[1]),
        name=row[2],
        state=TaskState(row[3]),
        reason=TaskReason(row[4]) if row[4] else None,
        depends_on=tuple(json.loads(row[5])),
        attempts_used=row[6],
        command=load_command(row[7]),
        duration=row[8],
        max_attempts=row[9],
        labels=load_labels(row[10]),
        priority=row[11],
        created=row[12],
        started=row[13],
        finished=row[14],
        runner=row[15],
        attempts=attempts,
        description=row[16],
        run_if=_RUN_IF[row[17]],
        matrix=load_mapping(row[18]),
        matrix_of=row[19],
        attempts_this_round=row[20],
    )


def submitted_task(
    task_id: int, workflow_ref: str, spec: TaskSpec, depends_on: tuple[str, ...], now: float
) -> Task:
    """A task just stored by a submit, built from its spec rather than read back.

    A submit answers with every task; reusing the spec's own values (not freshly
    decoded copies of the stored JSON) keeps a 100,000-task answer small.
    """
    return Task(
        id=make_id("t", task_id),
        workflow_id=workflow_ref,
        name=spec.name,
        state=TaskState.TODO,
        reason=None,
        depends_on=depends_on,
        attempts_used=0,
        command=spec.command,
        duration=spec.duration,
        max_attempts=spec.max_attempts,
        labels=spec.labels,
        priority=spec.priority,
        created=now,
        description=spec.description,
        run_if=spec.run_if,
        matrix=spec.matrix,
        matrix_of=spec.matrix_of,
    )


def attempt_from_row(row: Sequence[Any]) -> Attempt:
    return Attempt(
        id=make_id("a", row[0]),
        task_id=make_id("t", row[1]),
        number=row[2],
        status=AttemptStatus(row[3]),
        runner=row[4],
        started=row[5],
        finished=row[6],
        exit_code=row[7],
        reason=row[8],
    )


def env_from_text(text: str) -> Mapping[str, str]:
    return dict(json.loads(text))
