"""Workflow files in, one validated ``WorkflowSpec`` out (SPEC section 2).

The CLI reads files (``load_workflow_file``), the API receives JSON
(``load_workflow_document``); both go through the same checks in the same
order: the document's shape (YAML, then the JSON Schema), then the dependency
graph, then normalization. Every problem found is collected and raised
together as ``WorkflowInvalid``; nothing half-valid gets through.
"""

from __future__ import annotations

import os
from typing import Any

from stq.errors import Problem, WorkflowInvalid
from stq.gc_pause import gc_paused
from stq.loader.graph import graph_problems
from stq.loader.locate import Locator
from stq.loader.normalize import normalize
from stq.loader.schema import schema_problems, workflow_schema
from stq.loader.yaml_source import YamlError, parse_yaml
from stq.model import WorkflowSpec
from stq.settings import MAX_BODY_BYTES

__all__ = [
    "MAX_FILE_BYTES",
    "load_workflow_document",
    "load_workflow_file",
    "load_workflow_text",
    "workflow_schema",
]

#: Largest workflow file accepted, the same as the API's largest body.
MAX_FILE_BYTES = MAX_BODY_BYTES


def _refuse(filename: str, message: str, line: int = 1, col: int = 1) -> WorkflowInvalid:
    return WorkflowInvalid([Problem(message, "", filename, line, col)])


def load_workflow_file(path: str | os.PathLike[str]) -> WorkflowSpec:
    """Read, check and normalize one workflow file."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as ex:
        raise _refuse(filename, f"cannot read the file: {ex.strerror or ex}") from None
    return load_workflow_text(data, filename)


def _decode(data: bytes, filename: str) -> str:
    """UTF-8 (a BOM is allowed); a bad byte is located by line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        before = data[: ex.start]
        line = before.count(b"\n") + 1
        col = ex.start - (before.rfind(b"\n") + 1) + 1
        byte = data[ex.start : ex.start + 1].hex()
        raise _refuse(
            filename,
            f"not UTF-8 text: byte 0x{byte} cannot be decoded; save the file as UTF-8",
            line,
            col,
        ) from None


def load_workflow_text(text: str | bytes, filename: str = "<text>") -> WorkflowSpec:
    """Check and normalize a workflow given as YAML text (or JSON, which is YAML)."""
    size = len(text)
    if size > MAX_FILE_BYTES:
        raise _refuse(filename, f"the file is larger than the limit of {MAX_FILE_BYTES} bytes")
    if isinstance(text, bytes):
        text = _decode(text, filename)
    with gc_paused():
        try:
            doc, marks = parse_yaml(text, filename)
        except YamlError as ex:
            raise WorkflowInvalid([ex.problem]) from None
        return _check(Locator(doc, marks, filename))


def load_workflow_document(doc: object) -> WorkflowSpec:
    """Check and normalize an already parsed document (the API's JSON body)."""
    with gc_paused():
        return _check(Locator(doc))


def _check(where: Locator) -> WorkflowSpec:
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
        problems = schema_problems(doc, where)
    except RecursionError:  # only a JSON document can nest this deep; YAML is bounded
        raise WorkflowInvalid([where.problem([], "the document is nested too deeply")]) from None
    if isinstance(doc.get("tasks"), dict):
        problems += graph_problems(doc["tasks"], where)
    if not problems:
        spec, problems = normalize(doc, where)
        if not problems:
            return spec
    problems.sort(key=lambda p: (p.line, p.col))
    raise WorkflowInvalid(problems)
