"""Reading and checking, shared by every way a workflow comes in.

A file (``stq validate``, ``submit``, ``run``), YAML text, or the API's JSON
body all go through ``check``: the document's shape (the JSON Schema, and
what it cannot say: ``stq.loader.checks``), its matrices, then the
dependency graph with matrices expanded, then normalization. Every problem
found is collected and raised together as ``WorkflowInvalid``; nothing
half-valid gets through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stq.body_limit import check_body_size
from stq.errors import PayloadTooLarge, Problem, WorkflowInvalid
from stq.loader.checks import content_problems
from stq.loader.graph import graph_problems
from stq.loader.locate import Locator
from stq.loader.matrix import Plan, plan_matrices
from stq.loader.normalize import normalize
from stq.loader.params import override
from stq.loader.schema import schema_problems
from stq.loader.yaml_source import YamlError, parse_yaml
from stq.model import WorkflowSpec
from stq.settings import MAX_BODY_BYTES

#: Largest workflow file accepted: the API's largest body, as ``within_limit`` checks.
MAX_FILE_BYTES = MAX_BODY_BYTES

Params = Mapping[str, str] | None


def refuse(filename: str, message: str, line: int = 1, col: int = 1) -> WorkflowInvalid:
    """One problem of the file as a whole (or at one place in it)."""
    return WorkflowInvalid([Problem(message, "", filename, line, col)])


def within_limit(filename: str, size: int, what: str = "The file", hint: str = "") -> None:
    """The body size rule (``stq.body_limit``) for ``size`` bytes, as a problem of the whole file.

    ``what`` names what weighs ``size``; ``hint`` follows the message, a sentence of its own.
    """
    try:
        check_body_size(size, what)
    except PayloadTooLarge as ex:
        raise refuse(filename, f"{ex.message}{hint}") from None


def read_file(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """The file's name as given, and its bytes (one past the limit at most)."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            return filename, handle.read(MAX_FILE_BYTES + 1)
    except OSError as ex:
        raise refuse(filename, f"cannot read the file: {ex.strerror or ex}") from None


def _decode(data: bytes, filename: str) -> str:
    """UTF-8 (a BOM is allowed); a bad byte is located by line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        before = data[: ex.start]
        line = before.count(b"\n") + 1
        col = ex.start - (before.rfind(b"\n") + 1) + 1
        byte = data[ex.start : ex.start + 1].hex()
        raise refuse(
            filename,
            f"not UTF-8 text: byte 0x{byte} cannot be decoded; save the file as UTF-8",
            line,
            col,
        ) from None


def parse_text(text: str | bytes, filename: str, params: Params) -> Locator:
    """The YAML (or JSON) text as a document that knows where each node is, params applied."""
    within_limit(filename, len(text))
    if isinstance(text, bytes):
        text = _decode(text, filename)
    try:
        doc, marks = parse_yaml(text, filename)
    except YamlError as ex:
        raise WorkflowInvalid([ex.problem]) from None
    return Locator(override(doc, params, filename, copy=False), marks, filename)


def document(doc: object, params: Params) -> Locator:
    """An already parsed document (the API's JSON body), params applied to a copy."""
    return Locator(override(doc, params, "the workflow", copy=True))


def check(where: Locator) -> WorkflowSpec:
    """The document's ``WorkflowSpec``, or ``WorkflowInvalid`` with every problem, in order."""
    doc: Any = where.root
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        raise WorkflowInvalid(
            [
                where.problem(
                    [], f"the top level must be a mapping with 'name' and 'tasks', not {kind}"
                )
            ]
        )
    try:
        shape = schema_problems(doc, where)
        problems = _without_repeats(content_problems(doc, where), shape)
    except RecursionError:  # only a JSON document can nest this deep; YAML is bounded
        raise WorkflowInvalid([where.problem([], "the document is nested too deeply")]) from None
    plan, edges = Plan(), None
    if isinstance(doc.get("tasks"), dict):
        plan = plan_matrices(doc["tasks"], where)
        graph, expanded = graph_problems(doc["tasks"], plan, where)
        problems += plan.problems + graph
        # without matrices, each task's dependencies are as written: normalize reads them
        edges = expanded if plan.expansions else None
    if not problems:
        spec, problems = normalize(doc, where, plan, edges)
        if not problems:
            return spec
    problems.sort(key=lambda p: (p.line, p.col))
    raise WorkflowInvalid(problems)


def _without_repeats(first: list[Problem], then: list[Problem]) -> list[Problem]:
    """``first``, and those of ``then`` at a place ``first`` has not already said more about.

    A NUL in a matrix value breaks the schema's pattern too; the NUL is what
    the user needs to hear.
    """
    if not first:
        return then
    said = {problem.path for problem in first}
    return first + [problem for problem in then if problem.path not in said]
