"""Workflow files in, one validated ``WorkflowSpec`` out (docs/workflow-file.md).

The CLI reads files (``load_workflow_file``; ``submit_body`` for what it
sends), the API receives JSON (``load_workflow_document``); all go through
the same checks in the same order (``stq.loader.pipeline``). Each takes the
command line's ``--param`` values (``parse_param_flags``) as ``params``.
"""

from __future__ import annotations

import os

from stq.gc_pause import gc_paused
from stq.loader.body import submit_body
from stq.loader.params import parse_param_flags
from stq.loader.pipeline import MAX_FILE_BYTES, Params, check, document, parse_text, read_file
from stq.loader.schema import workflow_schema
from stq.model import WorkflowSpec

__all__ = [
    "MAX_FILE_BYTES",
    "load_workflow_document",
    "load_workflow_file",
    "load_workflow_text",
    "parse_param_flags",
    "submit_body",
    "workflow_schema",
]


def load_workflow_file(path: str | os.PathLike[str], params: Params = None) -> WorkflowSpec:
    """Read, check and normalize one workflow file; ``params`` replace declared values."""
    filename, data = read_file(path)
    return load_workflow_text(data, filename, params=params)


def load_workflow_text(
    text: str | bytes, filename: str = "<text>", *, params: Params = None
) -> WorkflowSpec:
    """Check and normalize a workflow given as YAML text (or JSON, which is YAML)."""
    with gc_paused():
        return check(parse_text(text, filename, params))


def load_workflow_document(doc: object, *, params: Params = None) -> WorkflowSpec:
    """Check and normalize an already parsed document (the API's JSON body)."""
    with gc_paused():
        return check(document(doc, params))
