"""The commands that start long-lived processes: ``stq worker``, ``stq server``, ``stq run``.

``stq run`` starts a server and runners of its own on this machine
(``stq.cli.local``); the server's checks and command line are the API's
(``stq.api.launch``), the runner is ``stq.worker``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from stq.api.launch import DEFAULT_BIND, default_workers
from stq.cli.flags import command, junit_flag, number, param_flag
from stq.cli.workflow_file import file_and_body
from stq.settings import Settings

#: Most local runners ``stq run -j`` starts. Each is a Python process (~23 MB resident, a
#: connection to the embedded server); past a few per CPU they only wait on each
#: other, and a value like 1000000 is a typo that would fork until memory runs out.
MAX_JOBS = 256


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Serve one or more servers until stopped."""
    from stq.worker.run import run_worker

    labels = [x.strip() for x in (args.labels or "").split(",") if x.strip()]
    return run_worker(
        args.urls or [settings.server_url],
        token=settings.token,
        labels=labels,
        name=args.name,
        exit_when_idle=args.exit_when_idle,
    )


def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    """Check the bind is safe, then become gunicorn."""
    from stq.api.launch import serve

    return serve(args.bind, args.db, args.workers, args.insecure, settings.token)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The whole workflow on this machine: embedded server, N local runners."""
    from stq.cli.local import run_local

    spec, body = file_and_body(args, "run")
    return run_local(
        spec, body, args.jobs, args.db, sys.stdout, verbose=args.verbose, junit=args.junit
    )


def add_commands(sub: Any) -> None:
    p = command(sub, "worker", "run a runner against one or more servers", cmd_worker)
    p.add_argument("urls", nargs="*", metavar="URL", help="server URLs (env: STQ_SERVER)")
    p.add_argument("--labels", metavar="a,b", help="labels this runner has")
    p.add_argument("--name", help="runner name (default: host-pid)")
    p.add_argument(
        "--exit-when-idle",
        type=number(float, 0),
        metavar="SECONDS",
        help="exit after this many seconds with nothing to run (default: never)",
    )

    p = command(sub, "server", "run the API server under gunicorn", cmd_server)
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="HOST:PORT",
        help="address to listen on (default %(default)s; beyond loopback it needs "
        "STQ_TOKEN or --insecure)",
    )
    p.add_argument("--db", metavar="PATH_OR_URL", help="store (env: STQ_DB, default stq.db)")
    p.add_argument(
        "--workers",
        type=number(int, 1),
        default=default_workers(),
        metavar="N",
        help="gunicorn worker processes (default: 2 per CPU, at most 8; here %(default)s)",
    )
    p.add_argument("--insecure", action="store_true", help="allow a public bind with no token")

    p = command(sub, "run", "run a workflow start to end on this machine", cmd_run)
    p.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    p.add_argument(
        "-j",
        "--jobs",
        type=number(int, 1, MAX_JOBS),
        default=min(MAX_JOBS, os.cpu_count() or 1),
        metavar="N",
        help=f"local runners, 1 to {MAX_JOBS} (default: one per CPU, here %(default)s)",
    )
    p.add_argument("--db", metavar="PATH", help="SQLite file to keep (default: a temp file)")
    param_flag(p)
    junit_flag(p)
