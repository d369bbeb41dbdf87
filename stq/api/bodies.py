"""The JSON Schemas request bodies are validated with, and the one parser.

The same dicts are published in the OpenAPI document (``openapi.py``), so the
documentation cannot drift from what the server accepts. Every object schema
rejects unknown fields: a typo in a runner written in another language
becomes a clear 400 instead of a silently ignored field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import falcon
from jsonschema import Draft202012Validator

from stq.api.guards import read_body
from stq.errors import BadRequest, Problem, WorkflowInvalid
from stq.loader.fast_schema import fast_check
from stq.loader.locate import pointer

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
        "exit_code": {"type": ["integer", "null"], "minimum": -(2**63), "maximum": 2**63 - 1},
        "output": {"type": "string", "description": "stdout and stderr; the last 1 MiB is kept."},
        "message": {"type": ["string", "null"]},
        "output_offset": {
            "type": "integer",
            "minimum": 0,
            "description": "STQ extension: the byte of the command's output `output` starts "
            "at (a streaming runner sends only what it had not sent yet); bytes the "
            "server already has are not stored twice.",
        },
        "next": NEXT,
    },
    "required": ["status"],
    "additionalProperties": False,
}

HEARTBEAT = {
    "type": "object",
    "description": "An empty object (or no body at all).",
    "properties": {
        "runner": _NAME,
        "wait": {
            "type": "number",
            "minimum": 0,
            "description": "Hold the answer up to this many seconds (at most the heartbeat "
            "interval), answering at once if the command must stop.",
        },
    },
    "additionalProperties": False,
}

_VALIDATORS: dict[int, Any] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """A cached validator, keyed by identity like ``fast_check`` (the schemas never change)."""
    key = id(schema)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = Draft202012Validator(schema)
    return _VALIDATORS[key]


def _pointer(path: Any) -> str:
    return "".join(f"/{part}" for part in path)


class _DuplicateKey(Exception):
    """Raised by ``_unique_object`` to stop the parse at the first repeated key."""


class _Marked(dict):  # type: ignore[type-arg]
    """An object of the second, slow parse: remembers its first repeated key."""

    duplicate: str | None = None


def parse_text(req: falcon.Request) -> str:
    """A text/plain body (a command's output: any bytes, read as UTF-8 leniently)."""
    return read_body(req).decode("utf-8", errors="replace")


def parse_json(req: falcon.Request, empty: Any = None) -> Any:
    """The request body as JSON; ``empty`` when there is no body; 400 if malformed."""
    return _loads(_read(req, empty), empty)


def parse_document(req: falcon.Request) -> Any:
    """A workflow document: as ``parse_json``, and a duplicate key at any level is a 422.

    A workflow file is rejected for a file with a duplicate key, and the same document as JSON is
    what the API takes; ``json.loads`` would keep the last value silently.
    """
    return read_document(req)[0]


def read_document(req: falcon.Request) -> tuple[Any, bytes]:
    """``parse_document``'s document and the bytes it came in (a keyed submit hashes them)."""
    raw = _read(req, None)
    try:
        return _loads(raw, None, _unique_object), raw
    except _DuplicateKey:
        path, key = _first_duplicate(_loads(raw, None, _marked_object)) or ([], "")
        raise WorkflowInvalid([Problem(f"duplicate key {key!r}", pointer(path))]) from None


def _read(req: falcon.Request, empty: Any) -> bytes:
    raw = read_body(req)
    if not raw.strip() and empty is None:
        raise BadRequest("The request needs a JSON body.")
    return raw


def _loads(raw: bytes, empty: Any, object_pairs_hook: Any = None) -> Any:
    """Strict JSON: no NaN or infinities, no unpaired surrogate escapes, bounded nesting.

    Each of those parses in Python but cannot be stored or acted on (a NaN
    ``wait`` never ends; SQLite cannot encode a lone surrogate), so each is
    the client's 400 here rather than a 500 or a stuck request later.
    """
    if not raw.strip():
        return empty
    try:
        doc = json.loads(
            raw,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=object_pairs_hook,
        )
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(doc, ensure_ascii=False).encode()  # raises on an unpaired surrogate
    except (UnicodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("The body is not valid JSON: it is nested too deeply.") from None
    return doc


#: A ``\uD800``-``\uDFFF`` escape: only then can a string hold an unpaired surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _marked_object(pairs: list[tuple[str, Any]]) -> _Marked:
    obj = _Marked(pairs)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            obj.duplicate = key
            break
        seen.add(key)
    return obj


def _first_duplicate(doc: Any, path: tuple[Any, ...] = ()) -> tuple[list[Any], str] | None:
    """(path of the object, key) of the first repeated key, in document order."""
    if isinstance(doc, _Marked) and doc.duplicate is not None:
        return list(path), doc.duplicate
    children: Any = ()
    if isinstance(doc, dict):
        children = doc.items()
    elif isinstance(doc, list):
        children = enumerate(doc)
    for key, value in children:
        found = _first_duplicate(value, (*path, key))
        if found:
            return found
    return None


def parse(req: falcon.Request, schema: dict[str, Any], empty: Any = None) -> dict[str, Any]:
    """The request body, validated against ``schema``; 400 listing every problem."""
    doc = parse_json(req, empty)
    if fast_check(schema)(doc):
        return doc  # the common case, without jsonschema's cost
    errors = sorted(_validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        details = [{"path": _pointer(e.absolute_path), "message": e.message} for e in errors]
        raise BadRequest(f"Invalid request body: {details[0]['message']}", details)
    return doc
