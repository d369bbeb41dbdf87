"""A conservative fast path for validating small request bodies against their JSON Schema.

Why: runners send a claim or a result per task, and full ``jsonschema``
validation of those few-field bodies was about a fifth of the server's time
per request in the profile. This interpreter understands only the keywords
the request schemas use and answers "surely valid" or "not sure". It may be
stricter than the schema (e.g. it refuses ``1.0`` as an integer, which JSON
Schema accepts), never looser: anything it is not sure about goes to
``jsonschema``, which stays the judge and writes every error message. So
unknown fields are still rejected, with the same 400 as before.
"""

from __future__ import annotations

from typing import Any

#: Keywords that do not constrain the value.
_ANNOTATIONS = frozenset({"description", "default", "title", "examples"})

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
}


def surely_valid(schema: dict[str, Any], value: Any) -> bool:
    """True only if ``value`` is valid against ``schema``; False means "ask jsonschema"."""
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        check = _CHECKS.get(key)
        if check is None or not check(rule, value, schema):
            return False
    return True


def _type(rule: Any, value: Any, _: dict) -> bool:
    names = rule if isinstance(rule, list) else [rule]
    return any(name in _TYPES and _TYPES[name](value) for name in names)


def _properties(rule: dict, value: Any, _: dict) -> bool:
    if not isinstance(value, dict):
        return True
    return all(surely_valid(rule[k], v) for k, v in value.items() if k in rule)


def _additional(rule: Any, value: Any, schema: dict) -> bool:
    if rule is not False:
        return False  # only `false` is understood
    return not isinstance(value, dict) or all(k in schema.get("properties", {}) for k in value)


def _required(rule: list, value: Any, _: dict) -> bool:
    return not isinstance(value, dict) or all(k in value for k in rule)


def _items(rule: dict, value: Any, _: dict) -> bool:
    return not isinstance(value, list) or all(surely_valid(rule, v) for v in value)


def _length(limit: Any, value: Any, at_least: bool) -> bool:
    if not isinstance(value, str):
        return True
    return len(value) >= limit if at_least else len(value) <= limit


def _number(limit: Any, value: Any) -> bool:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return not numeric or value >= limit


_CHECKS: dict[str, Any] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "enum": lambda rule, value, _: any(value == v and type(value) is type(v) for v in rule),
    "minLength": lambda rule, value, _: _length(rule, value, True),
    "maxLength": lambda rule, value, _: _length(rule, value, False),
    "maxItems": lambda rule, value, _: not isinstance(value, list) or len(value) <= rule,
    "minimum": lambda rule, value, _: _number(rule, value),
}
