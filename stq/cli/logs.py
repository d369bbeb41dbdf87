"""``stq logs``: the captured output of a task's attempt, or ``-f`` to follow it live."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stq.cli.flags import command, json_flag, number, server_flag
from stq.cli.lookup import NAME_SEARCH_WORKFLOWS
from stq.cli.remote import client
from stq.errors import EXIT_OK
from stq.settings import Settings


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    """The captured output of a task's attempt (default: the last); -f follows it live."""
    from stq.cli import follow
    from stq.cli.lookup import find_task

    api = client(args, settings)
    task = find_task(api, args.task_id)
    sink = follow.Json(sys.stdout) if args.json else follow.Text(sys.stdout)
    if args.follow:
        follow.follow(api, task, args.attempt, sink)
    else:
        follow.show(api, task, args.attempt, sink)
    return EXIT_OK


def add_commands(sub: Any) -> None:
    p = command(sub, "logs", "show the output of a task's attempt", cmd_logs)
    p.add_argument(
        "task_id",
        metavar="TASK",
        help="a task's id, as stq status WORKFLOW_ID lists it, or its name when no other "
        f"task of the {NAME_SEARCH_WORKFLOWS} newest workflows has it",
    )
    p.add_argument(
        "--attempt", type=number(int, 1), metavar="N", help="attempt to show (default: the last)"
    )
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print output as the command prints it, through each retry, until the task ends",
    )
    json_flag(p, "the attempt and its output (with -f: an object per line as output comes)")
    server_flag(p)
