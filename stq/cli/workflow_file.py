"""The one way every command reads a workflow file.

So ``submit`` and ``run`` accept exactly what ``validate`` accepts, and refuse
the rest with the same ``FILE:LINE:COL: message`` lines.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO, TypeVar

from stq.errors import StqError, WorkflowInvalid
from stq.model import WorkflowSpec

T = TypeVar("T")


def read_workflow(path: str, problems: TextIO) -> WorkflowSpec | None:
    """Read and check one workflow file; None after printing each problem to ``problems``.

    Pipes such as ``<(...)`` are read too; a directory, an empty file and a
    missing one are all problems of the file, as ``FILE:LINE:COL: message`` lines.
    """
    from stq.loader import load_workflow_file

    return _checked(lambda: load_workflow_file(path), problems)


def file_and_body(args: argparse.Namespace, verb: str) -> tuple[WorkflowSpec, bytes]:
    """The file of ``submit`` or ``run``, checked, and the body that submits it as written.

    ``--param`` values replace the file's (a name it does not declare is a
    usage error, exit 2); problems of the file go to stderr, exit 1. The body
    is the document as the file writes it, defaults and matrices unexpanded:
    the server expands them, so a file far under the body limit stays so.
    """
    from stq.loader import parse_param_flags, submit_body

    params = parse_param_flags(args.param)
    checked = _checked(lambda: submit_body(args.file, params), sys.stderr)
    if checked is None:
        raise StqError(f"nothing was {verb}: fix {args.file} as the lines above say")
    return checked


def _checked(read: Callable[[], T], problems: TextIO) -> T | None:
    """``read()``, or None after printing each problem of the file to ``problems``."""
    try:
        return read()
    except WorkflowInvalid as ex:
        for problem in ex.problems:
            print(problem, file=problems)
        return None
