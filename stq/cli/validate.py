"""``stq validate``: check workflow files offline, every problem of every file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stq.cli.flags import command
from stq.cli.workflow_file import read_workflow
from stq.errors import EXIT_FAILED, EXIT_OK
from stq.settings import Settings


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    """Check files offline; print every problem of every file, and a line per valid one."""
    status = EXIT_OK
    for path in args.files:
        spec = read_workflow(path, sys.stdout)
        if spec is None:
            status = EXIT_FAILED
        elif not args.quiet:
            count = len(spec.tasks)
            print(f"{path}: ok ({count} task{'' if count == 1 else 's'})")
    return status


def add_commands(sub: Any) -> None:
    p = command(sub, "validate", "check workflow files offline", cmd_validate)
    p.add_argument("files", nargs="+", metavar="FILE", help="workflow files (YAML) to check")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print only problems, no line per valid file"
    )
