"""JSON Schema at compiled speed: jsonschema-rs may say "valid", jsonschema says why not.

Why: runners send a claim and a result per task, and a submitted workflow may
hold 100,000 tasks. ``jsonschema`` takes ~40-60 us per request body and tens
of seconds for such a document; jsonschema-rs, a maintained Rust validator of
the same 2020-12 draft, takes ~0.5 us and ~0.05 s. It compiles the very
schema dicts ``jsonschema`` uses, so each schema is still defined once. Only
its "valid" is trusted: "invalid", or a value it cannot take (a pattern to
match against an unpaired surrogate, a key that is not a string), sends the
caller to ``jsonschema``, which stays the judge and writes every message
users see. ``tests/fuzz/test_fast_schema.py`` checks it is never looser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_COMPILED: dict[int, tuple[dict[str, Any], Check]] = {}


def fast_check(schema: dict[str, Any]) -> Check:
    """A check true only for values ``schema`` accepts, compiled at its first use.

    False means "ask jsonschema". Compiled lazily: importing the Rust module
    and compiling belong to the first request, not to building the app.
    Keyed by identity like the jsonschema validators: the schemas are module
    constants (or cached), never changed after they are built.
    """
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        import jsonschema_rs

        is_valid = jsonschema_rs.Draft202012Validator(schema).is_valid
        entry = _COMPILED[id(schema)] = (schema, _guarded(is_valid))
    return entry[1]


def _guarded(is_valid: Check) -> Check:
    def check(value: Any) -> bool:
        try:
            return is_valid(value)
        except Exception:  # a value it cannot convert (ValueError and the like): not sure
            return False

    return check
