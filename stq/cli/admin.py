"""Looking after a server: ``stq runners``, and ``cancel``, ``retry``, ``delete`` of a workflow."""

from __future__ import annotations

import argparse
from typing import Any

from stq.cli.flags import command, json_flag, server_flag, workflow_id
from stq.cli.output import json_text
from stq.cli.remote import client
from stq.errors import EXIT_OK
from stq.settings import Settings


def cmd_runners(args: argparse.Namespace, settings: Settings) -> int:
    """The runners the server heard from in the last 10 minutes; --json for scripts."""
    from stq.cli.views import runners_table

    runners = client(args, settings).runners()
    print(json_text({"runners": runners}) if args.json else runners_table(runners))
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from stq.cli.progress import workflow_state

    answer = client(args, settings).cancel(args.workflow_id) or {}
    print(f"{args.workflow_id}: {workflow_state(answer) if 'state' in answer else 'cancelled'}")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    answer = client(args, settings).retry(args.workflow_id) or {}
    print(f"{args.workflow_id}: {answer.get('state', 'running')}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Forget a finished workflow with its tasks and output; a running one is refused."""
    client(args, settings).delete(args.workflow_id)
    print(f"{args.workflow_id}: deleted")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    p = command(sub, "runners", "show the runners seen in the last 10 minutes", cmd_runners)
    json_flag(p, "the API's answer")
    server_flag(p)

    for name, handler, text in [
        ("cancel", cmd_cancel, "cancel a workflow: its unfinished tasks fail"),
        ("retry", cmd_retry, "retry a workflow's failed tasks"),
        ("delete", cmd_delete, "forget a finished workflow, its tasks and their output"),
    ]:
        p = command(sub, name, text, handler)
        workflow_id(p)
        server_flag(p)
