"""Query parameters as the API reads them: each given at most once, checked, else a located 400.

A bad value is refused with the parameter's name as its ``path`` and what it
must be, the same for every resource that filters or pages.
"""

from __future__ import annotations

from typing import Any

import falcon

from stq.errors import BadRequest


def enum_param(req: falcon.Request, name: str, enum: type) -> Any:
    """An optional query parameter that must be one of an enum's values (else 400)."""
    value = one_param(req, name)
    if value is None or value == "":
        return None
    try:
        return enum(value)
    except ValueError:
        raise _bad_param(name, value, "one of: " + ", ".join(e.value for e in enum)) from None


def int_param(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    """An optional integer query parameter in ``low..high`` (else 400, located like the rest)."""
    value = one_param(req, name)
    if value is None:
        return default
    if value.isascii() and value.isdigit() and low <= int(value) <= high:
        return int(value)
    raise _bad_param(name, value, f"an integer from {low} to {high}")


def bool_param(req: falcon.Request, name: str, default: bool) -> bool:
    """An optional ``true``/``false`` query parameter (also 1/0, yes/no, on/off...; else 400)."""
    value = one_param(req, name)
    if value is None:
        return default
    answer = _BOOLEANS.get(value.lower())
    if answer is None:
        raise _bad_param(name, value, "true or false")
    return answer


#: The spellings falcon's ``get_param_as_bool`` took, so no client breaks.
_BOOLEANS = {**dict.fromkeys(("true", "t", "yes", "y", "1", "on"), True),
             **dict.fromkeys(("false", "f", "no", "n", "0", "off"), False)}  # fmt: skip


def one_param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once: ``?state=todo&state=x`` is a 400, not one of
    the two chosen silently."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise _bad_param(name, ", ".join(value), "given once")
    return value


def _bad_param(name: str, value: str, allowed: str) -> BadRequest:
    return BadRequest(
        f"Query parameter {name!r} must be {allowed}.",
        [{"path": name, "message": f"{value!r} is not {allowed}"}],
    )
