"""The JSON Schemas request bodies are validated with, and the one parser.

The same dicts are published in the OpenAPI document (``openapi.py``), so the
documentation cannot drift from what the server accepts. Every object schema
rejects unknown fields: a typo in a runner written in another language
becomes a clear 400 instead of a silently ignored field.
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from stq.api import quickcheck
from stq.api.guards import read_body
from stq.errors import BadRequest

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_LABELS = {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 100}

CLAIM = {
    "type": "object",
    "description": "Ask for the next claimable attempt, waiting up to `wait` seconds.",
    "properties": {
        "runner": {**_NAME, "description": "The runner's name, shown in attempts."},
        "labels": {**_LABELS, "description": "The runner's labels.", "default": []},
        "wait": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "Long-poll seconds; 0 answers at once, more than 30 counts as 30.",
        },
    },
    "required": ["runner"],
    "additionalProperties": False,
}

NEXT = {
    "type": "object",
    "description": "STQ extension: claim the runner's next attempt in the same request.",
    "properties": {"runner": _NAME, "labels": _LABELS},
    "required": ["runner"],
    "additionalProperties": False,
}

RESULT = {
    "type": "object",
    "description": "How the runner saw the attempt end.",
    "properties": {
        "status": {"enum": ["completed", "failed"]},
        "exit_code": {"type": ["integer", "null"]},
        "output": {"type": "string", "description": "stdout and stderr; the last 1 MiB is kept."},
        "message": {"type": ["string", "null"]},
        "next": NEXT,
    },
    "required": ["status"],
    "additionalProperties": False,
}

HEARTBEAT = {
    "type": "object",
    "description": "An empty object (or no body at all).",
    "properties": {"runner": _NAME},
    "additionalProperties": False,
}

_VALIDATORS: dict[int, Any] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """A cached validator; jsonschema is imported on first use to keep `import stq.api` cheap."""
    from jsonschema import Draft202012Validator

    key = id(schema)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = Draft202012Validator(schema)
    return _VALIDATORS[key]


def _pointer(path: Any) -> str:
    return "".join(f"/{part}" for part in path)


def parse_json(req: falcon.Request, empty: Any = None) -> Any:
    """The request body as JSON; ``empty`` when there is no body; 400 if malformed."""
    raw = read_body(req)
    if not raw.strip():
        if empty is None:
            raise BadRequest("The request needs a JSON body.")
        return empty
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None


def parse(req: falcon.Request, schema: dict[str, Any], empty: Any = None) -> dict[str, Any]:
    """The request body, validated against ``schema``; 400 listing every problem."""
    doc = parse_json(req, empty)
    if quickcheck.surely_valid(schema, doc):
        return doc  # the common case, without jsonschema's cost
    errors = sorted(_validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        details = [{"path": _pointer(e.absolute_path), "message": e.message} for e in errors]
        raise BadRequest(f"Invalid request body: {details[0]['message']}", details)
    return doc
