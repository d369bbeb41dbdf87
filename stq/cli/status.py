"""``stq status``: the workflows, or one workflow's tasks, details and waits."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from stq.cli.flags import command, json_flag, number, server_flag, workflow_id
from stq.cli.output import json_text
from stq.cli.remote import client
from stq.errors import EXIT_OK
from stq.settings import Settings

if TYPE_CHECKING:  # imported lazily: `stq validate` needs no HTTP client
    from stq.worker.client import Client

#: Workflows ``stq status`` lists in its table when no ``--limit`` is given.
STATUS_LIMIT = 20


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """The workflows, or one workflow's tasks; --json for scripts (every workflow, every page)."""
    from stq.cli.progress import workflow_table

    api = client(args, settings)
    if args.workflow_id is not None:  # '' too: the client refuses an empty id
        data = api.workflow(args.workflow_id)
        print(json_text(data) if args.json else _workflow_text(api, data))
        return EXIT_OK
    if args.json:
        listed = api.workflows(limit=args.limit) if args.limit else api.every_workflow()
        print(json_text({"workflows": listed}))
    else:
        print(workflow_table(api.workflows(limit=args.limit or STATUS_LIMIT)))
    return EXIT_OK


def _workflow_text(api: Client, wf: dict[str, Any]) -> str:
    """``stq status ID``: the task table under the head and params, then details and waits."""
    from stq.cli.progress import last_failed_attempts, task_table, workflow_head
    from stq.cli.views import details_table, params_line, waits_table

    tasks = wf.get("tasks") or []
    lines = [workflow_head(wf), params_line(wf.get("params"))]
    lines.append(task_table(wf, last_failed_attempts(api, tasks)))
    parts = ["\n".join(filter(None, lines)), details_table(tasks), waits_table(tasks)]
    return "\n\n".join(filter(None, parts))


def add_commands(sub: Any) -> None:
    p = command(sub, "status", "show the workflows, or one workflow's tasks", cmd_status)
    workflow_id(p, nargs="?")
    json_flag(p, "the API's answer (the list: every workflow, unless --limit)")
    p.add_argument(
        "--limit",
        type=number(int, 1),
        help=f"workflows listed (default {STATUS_LIMIT}; with --json, all)",
    )
    server_flag(p)
