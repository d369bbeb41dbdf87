"""Params given on the command line: ``--param NAME=VALUE`` replaces a declared value.

``parse_param_flags`` reads the repeatable flag for ``stq submit`` and
``stq run``; ``override`` puts the values into a parsed document before it
is checked, so a value given on the command line is checked (a NUL in it,
say) and reported exactly as one written in the file. A name the file does
not declare is a usage error, not a problem of the file: the file is fine,
the command line is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from stq.errors import UsageError

#: An environment variable name, as the schema's ``env_name`` says.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_param_flags(flags: Sequence[str]) -> dict[str, str]:
    """``["BRANCH=main", "DAY=2026-12-06"]`` -> ``{"BRANCH": "main", "DAY": "2026-12-06"}``.

    The value is everything after the first ``=`` (it may hold more, or be
    empty). A flag without ``=``, a name that cannot be an environment
    variable, or a name given twice is a ``UsageError``.
    """
    params: dict[str, str] = {}
    for flag in flags:
        name, equals, value = flag.partition("=")
        if not equals:
            raise UsageError(f"--param {flag!r}: write it as NAME=VALUE")
        if not _NAME.fullmatch(name):
            raise UsageError(
                f"--param {flag!r}: {name!r} is not a param name "
                "(a letter or _ followed by letters, digits or _)"
            )
        if name in params:
            raise UsageError(f"--param {name} is given twice: give each param once")
        params[name] = value
    return params


def override(doc: Any, params: Mapping[str, str] | None, source: str, copy: bool) -> Any:
    """``doc`` with each given param's value replaced; ``UsageError`` for an undeclared name.

    ``copy``: leave ``doc`` as it is (a caller's document) and return a
    changed copy of its top level and ``params``; otherwise change it in
    place, which keeps the positions of a document read from a file.
    A document whose ``params`` is not a mapping is returned as it is: the
    checks report that.
    """
    if not params or not isinstance(doc, dict):
        return doc
    declared = doc.get("params", {})
    if not isinstance(declared, dict):
        return doc
    unknown = [name for name in params if name not in declared]
    if unknown:
        flags = ", ".join(f"--param {name}" for name in unknown)
        names = ", ".join(map(str, declared)) if declared else "none"
        verb = "is not a param" if len(unknown) == 1 else "are not params"
        raise UsageError(f"{flags} {verb} of {source} (its params: {names})")
    if copy:
        return {**doc, "params": {**declared, **params}}
    declared.update(params)
    return doc
