"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of this API.

Request bodies are the very dicts ``bodies.py`` validates with, and the
workflow document is the packaged workflow JSON Schema, so the published
contract is the enforced one. Built once per process on first request.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import falcon

from stq import __version__ as _version
from stq.api import bodies
from stq.model import (
    AttemptStatus,
    RunIf,
    RunnerState,
    TaskReason,
    TaskState,
    WaitKind,
    WorkflowState,
)

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


def _enum(enum: type, nullable: bool = False) -> dict[str, Any]:
    values: list[Any] = [e.value for e in enum]
    return {"enum": [*values, None] if nullable else values}


def _filter(enum: type) -> dict[str, Any]:
    """A state filter in a query: one of the values, or empty for no filter (``?state=``)."""
    return {"enum": [*(e.value for e in enum), ""]}


def _records() -> dict[str, Any]:
    """Schemas of what the API answers with (render.py's shapes)."""
    attempt = _obj(
        {
            "id": _STR, "number": {"type": "integer"}, "status": _enum(AttemptStatus),
            "runner": _STR, "started": _TIME, "finished": _NTIME,
            "exit_code": {"type": ["integer", "null"]}, "reason": _NSTR,
        }
    )  # fmt: skip
    task = _obj(
        {
            "id": _STR,
            "workflow_id": _STR,
            "name": _STR,
            "state": _enum(TaskState),
            "reason": {
                **_enum(TaskReason, nullable=True),
                "description": "Why it ended with no attempt of its own deciding: "
                "upstream_failed or cancelled (failed), skipped (completed)",
            },
            "depends_on": {"type": "array", "items": _STR},
            "attempts_used": {"type": "integer", "description": "Attempts in all"},
            "attempts_this_round": {
                "type": "integer",
                "description": "Attempts since the last retry, against max_attempts",
            },
            "waiting_for": {"oneOf": [{"type": "null"}, _ref("WaitingFor")]},
            "attempts": {"type": "array", "items": _ref("Attempt")},
            "description": _NSTR,
            "run_if": {
                **_enum(RunIf),
                "description": "When it runs, by how its dependencies ended (a skipped "
                "on_failure task is completed with reason skipped and no attempts)",
            },
            "matrix": {
                "type": ["object", "null"], "additionalProperties": _STR,
                "description": "An expansion of a matrix task: its values as rendered text",
            },
            "matrix_of": {**_NSTR, "description": "The matrix task it is an expansion of"},
        },
        ["id", "workflow_id", "name", "state", "reason", "depends_on", "attempts_used",
         "attempts_this_round", "description", "run_if", "matrix", "matrix_of"],
    )  # fmt: skip
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    workflow = _obj(
        {
            "id": _STR, "name": _STR, "description": _NSTR, "state": _enum(WorkflowState),
            "created": _TIME, "finished": _NTIME, "counts": counts,
            "params": {
                "type": "object", "additionalProperties": _STR,
                "description": "The params every task got, final values ({} for none)",
            },
            "tasks": {"type": "array", "items": _ref("Task")},
            "time_left": {
                "type": ["integer", "null"], "minimum": 0,
                "description": "With tasks only (STQ's extension): seconds the critical path "
                "of the unfinished tasks is expected to take; null when the workflow is not "
                "running or nothing is known",
            },
        },
        ["id", "name", "description", "state", "created", "finished", "counts", "params"],
    )  # fmt: skip
    brief = _obj({"id": _STR, "name": _STR, "state": _enum(TaskState)})
    submitted = _obj(
        {"id": _STR, "name": _STR, "state": _enum(WorkflowState),
         "tasks": {"type": "array", "items": brief}}
    )  # fmt: skip
    waiting_for = _obj(
        {"kind": _enum(WaitKind), "tasks": {"type": "array", "items": _STR},
         "more": {"type": "integer"}, "until": _TIME,
         "labels": {"type": "array", "items": _STR}},
        ["kind"],
    )  # fmt: skip
    runner = _obj(
        {"name": _STR, "labels": {"type": "array", "items": _STR},
         "state": _enum(RunnerState), "attempt_id": _NSTR, "task_id": _NSTR,
         "last_seen": _TIME},
        ["name", "labels", "state", "attempt_id", "task_id", "last_seen"],
    )  # fmt: skip
    return {
        "Attempt": attempt,
        "Task": task,
        "WaitingFor": waiting_for,
        "Workflow": workflow,
        "Submitted": submitted,
        "Runner": runner,
    }


def _claims() -> dict[str, Any]:
    command = {"oneOf": [_STR, {"type": "array", "items": _STR}]}
    claim = _obj(
        {
            "attempt_id": _STR, "task_id": _STR, "workflow_id": _STR, "task_name": _STR,
            "attempt_number": {"type": "integer"}, "command": command,
            "env": {"type": "object", "additionalProperties": _STR}, "cwd": _NSTR,
            "duration": {"type": ["number", "null"]}, "heartbeat_interval": {"type": "number"},
        }
    )  # fmt: skip
    ack = _obj(
        {
            "attempt_status": _enum(AttemptStatus),
            "task_state": _enum(TaskState),
            "next": {"oneOf": [_ref("Claim"), {"type": "null"}]},
        },
        ["attempt_status", "task_state"],
    )
    error = _obj(
        {"error": _obj({"code": _STR, "message": _STR, "details": {"type": "array", "items": {}}})}
    )
    return {"Claim": claim, "ResultAck": ack, "Error": error}


def _rebase_refs(node: Any, base: str) -> Any:
    """Point the embedded schema's local '#/...' refs at where it now lives."""
    if isinstance(node, dict):
        return {
            k: (base + v[1:] if k == "$ref" and isinstance(v, str) and v.startswith("#") else
                _rebase_refs(v, base))
            for k, v in node.items()
        }  # fmt: skip
    if isinstance(node, list):
        return [_rebase_refs(v, base) for v in node]
    return node


def _workflow_document_schema() -> dict[str, Any]:
    from stq.loader import workflow_schema

    schema = copy.deepcopy(workflow_schema())
    schema.pop("$schema", None)
    return _rebase_refs(schema, "#/components/schemas/WorkflowDocument")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, **(_json(schema) if schema else {})}


ERRORS = {
    "400": "Malformed request (bad JSON, unknown or invalid fields, bad query parameter)",
    "401": "No token or a wrong token (when the server has STQ_TOKEN)",
    "404": "Unknown id",
    "409": "Conflicts with the current state",
    "413": "Body over 16 MiB",
    "415": "A body that is not application/json (text/plain for output posts)",
    "422": "The workflow document is invalid; details carry path and message",
    "503": "The store does not answer",
}


def _op(summary: str, ok: dict[str, Any], errors: str, **extra: Any) -> dict[str, Any]:
    responses = dict(ok)
    for code in errors.split():
        responses[code] = _resp(ERRORS[code], _ref("Error"))
    return {"summary": summary, "responses": responses, **extra}


def _param(name: str, where: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema,
            "description": text}  # fmt: skip


def _id(name: str) -> dict[str, Any]:
    return _param(name, "path", _STR, "An opaque id.")


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, **_json(schema)}


def _workflow_paths() -> dict[str, Any]:
    wid = [_id("workflow_id")]
    one = {"200": _resp("The workflow with its tasks", _ref("Workflow"))}
    listing = _obj({"workflows": {"type": "array", "items": _ref("Workflow")}})
    query = [
        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size"),
        _param("before", "query", _STR, "Id of the last workflow of the previous page"),
        _param("state", "query", _filter(WorkflowState), "Only workflows in this state"),
    ]
    deleted = _obj({"id": _STR, "deleted": {"type": "boolean"}})
    with_tasks = _param(
        "tasks", "query", {"type": "boolean"}, "false: the summary only (STQ's extension)"
    )
    key = _param(
        "Idempotency-Key", "header",
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
        "1-200 visible ASCII characters. Stored with a sha256 of the body in the same "
        "transaction as the workflow: a repeat within 24 h with the same body creates "
        "nothing and answers 200 with the first workflow (a repeat made while the first is "
        "being stored waits for it); with another body, 409. Deleting the workflow forgets "
        "the key.",
    )  # fmt: skip
    submitted = {
        "201": _resp("Stored", _ref("Submitted")),
        "200": _resp("A repeat of an Idempotency-Key: the first workflow, now", _ref("Submitted")),
    }
    return {
        "/api/v1/workflows": {
            "post": _op("Submit a workflow document", submitted, "400 401 409 413 422",
                        parameters=[key], requestBody=_body(_ref("WorkflowDocument"))),
            "get": _op("List workflows, newest first", {"200": _resp("A page", listing)},
                       "400 401 404", parameters=query),  # 404: an unknown `before`
        },
        "/api/v1/workflows/{workflow_id}": {
            "get": _op("One workflow with every task (tasks=false: its summary)", one,
                       "400 401 404", parameters=[*wid, with_tasks]),
            "delete": _op("Forget a terminal workflow", {"200": _resp("Gone", deleted)},
                          "401 404 409", parameters=wid),
        },
        "/api/v1/workflows/{workflow_id}/cancel": {
            "post": _op("Cancel: fail every non-terminal task", one, "401 404", parameters=wid)
        },
        "/api/v1/workflows/{workflow_id}/retry": {
            "post": _op("Retry every failed task", one, "401 404", parameters=wid)
        },
    }  # fmt: skip


def _task_paths() -> dict[str, Any]:
    listing = _obj({"tasks": {"type": "array", "items": _ref("Task")}})
    query = [
        _param("state", "query", _filter(TaskState), "Only tasks in this state"),
        _param("workflow", "query", _STR, "Only tasks of this workflow id"),
    ]
    one = {"200": _resp("The task with its attempts", _ref("Task"))}
    return {
        "/api/v1/tasks": {"get": _op("List tasks", {"200": _resp("Tasks", listing)},
                                     "400 401 404", parameters=query)},  # unknown workflow
        "/api/v1/tasks/{task_id}": {"get": _op("One task", one, "401 404",
                                               parameters=[_id("task_id")])},
    }  # fmt: skip


def _attempt_paths() -> dict[str, Any]:
    aid = [_id("attempt_id")]
    where = {name: {"description": text, "schema": _STR} for name, text in (
        ("STQ-Attempt-Finished", "`true` once the attempt ended"),
        ("STQ-Output-Start", "The first byte still kept (the last 1 MiB is)"),
        ("STQ-Output-End", "The byte after the last one received"),
    )}  # fmt: skip
    text = {"description": "The output", "headers": where,
            "content": {"text/plain": {"schema": _STR}}}  # fmt: skip
    offset = _param("offset", "query", {"type": "integer", "minimum": 0},
                    "An absolute byte offset in all the command printed")  # fmt: skip
    cancel = _obj({"cancel": {"type": "boolean"}})
    return {
        "/api/v1/attempts/claim": {"post": _op(
            "Claim the next attempt, long-polling up to `wait` seconds",
            {"200": _resp("Claimed", _ref("Claim")), "204": {"description": "Nothing to do"}},
            "400 401 413", requestBody=_body(bodies.CLAIM))},
        "/api/v1/attempts/{attempt_id}/heartbeat": {"post": _op(
            "The runner is alive; answers whether to kill the command",
            {"200": _resp("Whether to cancel", cancel)}, "400 401 404 413",
            parameters=aid, requestBody=_body(bodies.HEARTBEAT, required=False))},
        "/api/v1/attempts/{attempt_id}/result": {"post": _op(
            "Report how the attempt ended", {"200": _resp("Recorded", _ref("ResultAck"))},
            "400 401 404 409 413", parameters=aid, requestBody=_body(bodies.RESULT))},
        "/api/v1/attempts/{attempt_id}/output": {
            "get": _op("The attempt's kept output from byte `offset` on", {"200": text},
                       "400 401 404", parameters=[*aid, offset]),
            "post": _op("Output the command printed, from byte `offset` (runners)",
                        {"200": _resp("Whether to cancel", cancel)}, "400 401 404 409 413 415",
                        parameters=[*aid, offset],
                        requestBody={"required": True,
                                     "content": {"text/plain": {"schema": _STR}}}),
        },
    }  # fmt: skip


def _other_paths() -> dict[str, Any]:
    health = _obj({"ok": {"type": "boolean"}})
    runners = _obj({"runners": {"type": "array", "items": _ref("Runner")}})
    prom = {"description": "Prometheus text", "content": {"text/plain": {"schema": _STR}}}
    html = {"description": "The dashboard", "content": {"text/html": {"schema": _STR}}}
    file_name = _param("name", "path", _STR, "A file name in stq/api/dashboard/")
    return {
        "/api/v1/health": {"get": _op("Whether the store answers",
                                      {"200": _resp("Healthy", health)}, "503", security=[])},
        "/api/v1/openapi.json": {"get": _op("This document",
                                            {"200": _resp("OpenAPI 3.1", {"type": "object"})},
                                            "", security=[])},
        "/api/v1/runners": {"get": _op("Runners heard from in the last ten minutes",
                                       {"200": _resp("The runners", runners)}, "401")},
        "/metrics": {"get": _op("Prometheus metrics", {"200": prom}, "401")},
        "/": {"get": _op("The dashboard", {"200": html}, "", security=[])},
        "/dashboard/{name}": {"get": _op("A dashboard file (js, css, svg)",
                                         {"200": {"description": "The file"}}, "404",
                                         parameters=[file_name], security=[])},
    }  # fmt: skip


@functools.cache
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    schemas = {**_records(), **_claims(), "WorkflowDocument": _workflow_document_schema()}
    schemas |= {"ClaimRequest": bodies.CLAIM, "ResultRequest": bodies.RESULT,
                "HeartbeatRequest": bodies.HEARTBEAT}  # fmt: skip
    paths = {**_workflow_paths(), **_task_paths(), **_attempt_paths(), **_other_paths()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "STQ (SimpleTaskQueue) API", "version": _version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


class OpenApiResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = document()
