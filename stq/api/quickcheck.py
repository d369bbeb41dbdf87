"""A conservative fast path for validating small request bodies against their JSON Schema.

Why: runners send a claim or a result per task, and full ``jsonschema``
validation of those few-field bodies was about a fifth of the server's time
per request in the profile. Compiled once per schema, this understands only the keywords
the request schemas use and answers "surely valid" or "not sure". It may be
stricter than the schema (e.g. it refuses ``1.0`` as an integer, which JSON
Schema accepts), never looser: anything it is not sure about goes to
``jsonschema``, which stays the judge and writes every error message. So
unknown fields are still rejected, with the same 400 as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

#: Keywords that do not constrain the value.
_ANNOTATIONS = frozenset({"description", "default", "title", "examples"})

_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
}

_compiled: dict[int, tuple[dict[str, Any], Check]] = {}


def surely_valid(schema: dict[str, Any], value: Any) -> bool:
    """True only if ``value`` is valid against ``schema``; False means "ask jsonschema"."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _compiled[id(schema)] = (schema, _compile(schema))
    return entry[1](value)


def _compile(schema: dict[str, Any]) -> Check:
    """One function checking every keyword of ``schema``, built once per schema.

    Why compiled: interpreting the schema for every request cost about as much
    as the rest of the body handling.
    """
    checks = [
        _KEYWORDS.get(key, _unsure)(rule, schema)
        for key, rule in schema.items()
        if key not in _ANNOTATIONS
    ]

    def check(value: Any) -> bool:
        for one in checks:
            if not one(value):
                return False
        return True

    return check


def _unsure(rule: Any, schema: dict) -> Check:
    return lambda value: False  # a keyword this module does not know: let jsonschema judge


def _type(rule: Any, schema: dict) -> Check:
    names = rule if isinstance(rule, list) else [rule]
    if not all(name in _TYPES for name in names):
        return _unsure(rule, schema)
    tests = [_TYPES[name] for name in names]
    return tests[0] if len(tests) == 1 else lambda v: any(test(v) for test in tests)


def _properties(rule: dict, schema: dict) -> Check:
    subs = {key: _compile(sub) for key, sub in rule.items()}
    return lambda v: not isinstance(v, dict) or all(subs[k](x) for k, x in v.items() if k in subs)


def _additional(rule: Any, schema: dict) -> Check:
    if rule is not False:
        return _unsure(rule, schema)  # only `false` is understood
    allowed = frozenset(schema.get("properties", {}))
    return lambda v: not isinstance(v, dict) or allowed.issuperset(v)


def _required(rule: list, schema: dict) -> Check:
    return lambda v: not isinstance(v, dict) or all(k in v for k in rule)


def _items(rule: dict, schema: dict) -> Check:
    sub = _compile(rule)
    return lambda v: not isinstance(v, list) or all(sub(x) for x in v)


def _enum(rule: list, schema: dict) -> Check:
    return lambda v: any(v == e and type(v) is type(e) for e in rule)


def _min_length(rule: int, schema: dict) -> Check:
    return lambda v: not isinstance(v, str) or len(v) >= rule


def _max_length(rule: int, schema: dict) -> Check:
    return lambda v: not isinstance(v, str) or len(v) <= rule


def _max_items(rule: int, schema: dict) -> Check:
    return lambda v: not isinstance(v, list) or len(v) <= rule


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _minimum(rule: Any, schema: dict) -> Check:
    return lambda v: not _number(v) or v >= rule


def _maximum(rule: Any, schema: dict) -> Check:
    return lambda v: not _number(v) or v <= rule


_KEYWORDS: dict[str, Callable[[Any, dict], Check]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "enum": _enum,
    "minLength": _min_length,
    "maxLength": _max_length,
    "maxItems": _max_items,
    "minimum": _minimum,
    "maximum": _maximum,
}
