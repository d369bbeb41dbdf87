"""The workflow JSON Schema: loaded once from the package, errors in words people use.

``stq/schemas/workflow.schema.json`` is the single source of truth for the
format (docs/workflow-file.md). jsonschema reports every error (``iter_errors``); its
own messages print whole instances and say "Additional properties are not
allowed", so each kind of error is rewritten here into one short sentence
placed on the offending node. A valid document never reaches jsonschema:
jsonschema-rs, compiling the same file, accepts it first (``stq.loader.fast_schema``).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from stq.errors import Problem
from stq.loader.fast_schema import Check, fast_check
from stq.loader.locate import Locator

_LONGEST = 200


@cache
def workflow_schema() -> dict[str, Any]:
    """The schema as a dict (shared: callers must not change it)."""
    text = resources.files("stq.schemas").joinpath("workflow.schema.json").read_text("utf-8")
    return json.loads(text)


def _entry(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema with ``$defs/name`` as its root, so its ``$ref``s still resolve."""
    entry = {**schema, "$ref": f"#/$defs/{name}"}
    for key in ("type", "required", "properties", "additionalProperties"):
        entry.pop(key)
    return entry


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator, Draft202012Validator]:
    """jsonschema for the document around its tasks, for a single task, for a task name.

    Validating 100,000 tasks in one jsonschema call takes 10-30 s; split this
    way only the tasks the fast check refuses go through jsonschema.
    """
    schema = workflow_schema()
    tasks = {
        k: v
        for k, v in schema["properties"]["tasks"].items()
        if k not in ("propertyNames", "additionalProperties")
    }
    outer = {**schema, "properties": {**schema["properties"], "tasks": tasks}}
    return (
        Draft202012Validator(outer),
        Draft202012Validator(_entry(schema, "task")),
        Draft202012Validator(_entry(schema, "name")),
    )


@cache
def _fast_checks() -> tuple[Check, Check, Check]:
    """The same schema compiled by jsonschema-rs: the whole document, one task, one name."""
    schema = workflow_schema()
    return (
        fast_check(schema),
        fast_check(_entry(schema, "task")),
        fast_check(_entry(schema, "name")),
    )


def _short(value: Any) -> str:
    """The value as a person wrote it (``null``, ``true``), cut to a readable length."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = repr(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def _type_words(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else types
    words = [_TYPES.get(name, name) for name in names]
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _message(error: ValidationError, raw: str | None) -> str:
    """One sentence for one jsonschema error, naming the limit that was crossed.

    ``raw``: the value as written in the file, if it is not a string there:
    ``3.10`` is the float 3.1, but the user wrote ``3.10``.
    """
    kind, schema, value = error.validator, error.schema, error.instance
    hint = schema.get("x-message") if isinstance(schema, dict) else None
    if kind in ("anyOf", "oneOf", "pattern", "enum") and hint:
        return f"{raw or _short(value)} {hint}"
    texts = {
        "type": lambda: f"must be {_type_words(error.validator_value)}, not {_short(value)}",
        "required": lambda: f"missing required field {error.message.split(' is ')[0]}",
        "minProperties": lambda: "must not be empty",
        "maxProperties": lambda: (
            f"has {len(value)} entries, more than the limit of {error.validator_value}"
        ),
        "minItems": lambda: "must not be empty",
        "maxItems": lambda: (
            f"has {len(value)} items, more than the limit of {error.validator_value}"
        ),
        "minLength": lambda: "must not be empty",
        "maxLength": lambda: f"is longer than {error.validator_value} characters",
        "uniqueItems": lambda: f"lists {_duplicate(value)!r} more than once",
    }
    make = texts.get(kind)
    return make() if make else error.message[:_LONGEST]


def _duplicate(items: list[Any]) -> Any:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return item
        seen.append(item)
    return None


def _unknown_fields(error: ValidationError, path: list[Any], where: Locator) -> list[Problem]:
    """One problem per unknown key, at the key, with a guess at what was meant."""
    known = list(error.schema.get("properties", {}))
    own = workflow_schema()["$defs"]["task"]["properties"] if path == ["defaults"] else {}
    problems = []
    for key in error.instance:
        if key in known:
            continue
        guess = difflib.get_close_matches(str(key), known, n=1)
        if key in own:  # command, depends_on, description, matrix: no default makes sense
            hint = f" (known: {', '.join(known)}; '{key}' is set by each task)"
        elif guess:
            hint = f" (did you mean '{guess[0]}'?)"
        else:
            hint = f" (known: {', '.join(known)})"
        problems.append(
            where.problem([*path, key], f"unknown field '{key}'{hint}", at_key=True)
            if path
            else _top_unknown(where, key, hint)
        )
    return problems


def _top_unknown(where: Locator, key: Any, hint: str) -> Problem:
    line, col, _ = where.where([key], at_key=True)
    return Problem(f"unknown field '{key}'{hint}", f"/{key}", where.filename, line, col)


def _bad_name(error: ValidationError, path: list[Any], where: Locator) -> Problem:
    """``propertyNames`` failed: the error sits on the mapping, the culprit is the key."""
    name = error.instance
    hint = error.schema.get("x-message", "is not a valid name")
    what = "task name" if path == ["tasks"] else "name"
    line, col, _ = where.where([*path, name], at_key=True)
    problem = where.problem(path, f"{what} {_short(name)} {hint}")
    return Problem(problem.message, problem.path, problem.file, line, col)


def _errors(doc: Any) -> Iterator[tuple[ValidationError, list[Any]]]:
    """Every jsonschema error of the document with its path from the root."""
    whole, task_ok, name_ok = _fast_checks()
    if whole(doc):
        return  # the common case: no jsonschema at all
    outer, single, name = _validators()
    for error in outer.iter_errors(doc):
        yield error, list(error.absolute_path)
    tasks = doc.get("tasks")
    if not isinstance(tasks, dict):
        return
    for key, task in tasks.items():
        if not name_ok(key) and not name.is_valid(key):
            name_schema = workflow_schema()["$defs"]["name"]
            yield (
                ValidationError(
                    "bad name", validator="propertyNames", instance=key, schema=name_schema
                ),
                ["tasks"],
            )
        if task_ok(task):
            continue
        for error in single.iter_errors(task):
            yield error, ["tasks", key, *error.absolute_path]


def schema_problems(doc: Any, where: Locator) -> list[Problem]:
    """Every way ``doc`` (a dict) breaks the schema, located."""
    problems: list[Problem] = []
    for error, path in _errors(doc):
        if (
            error.validator == "additionalProperties"
            and error.schema.get("additionalProperties") is False
        ):
            problems.extend(_unknown_fields(error, path, where))
        elif error.validator == "propertyNames" or ("propertyNames" in error.relative_schema_path):
            problems.append(_bad_name(error, path, where))
        else:
            at_key = error.validator == "required"
            raw = where.raw_text(path) if path else None
            problems.append(where.problem(path, _message(error, raw), at_key=at_key))
    return problems
