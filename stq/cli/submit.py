"""``stq submit``: a workflow file sent once, however many answers are lost; ``--wait`` follows it.

The body is the file as written (``stq.cli.workflow_file``); following it is
``stq.cli.progress``'s, with reads that wait out an outage (``stq.cli.remote``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from stq.cli.flags import command, json_flag, junit_flag, number, param_flag, server_flag
from stq.cli.output import json_text, say
from stq.cli.remote import PatientReads, client
from stq.cli.workflow_file import file_and_body
from stq.errors import EXIT_FAILED, EXIT_OK, UsageError
from stq.settings import Settings


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Validate, submit (once, however many answers are lost), print the id; --wait follows it.

    With ``--json`` stdout is one JSON document: the submit's answer, or with
    ``--wait`` the final workflow, and no progress lines (they go to stderr
    when it is a terminal, else nowhere).
    """
    from stq.cli.progress import Progress, summary
    from stq.gc_pause import gc_paused
    from stq.worker.client import READ_SLACK

    if args.junit and not args.wait:
        raise UsageError("--junit needs --wait: the report is written when the workflow ends")
    api = client(args, settings)
    with gc_paused():  # a big workflow is millions of objects and no cycles
        _, body = file_and_body(args, "submitted")
        timeout = args.answer_timeout or READ_SLACK
        answer = api.submit(body, read_timeout=timeout, on_retry=say)
    if not args.wait:
        print(json_text(answer) if args.json else answer["id"], flush=True)
        return EXIT_OK
    if not args.json:
        print(answer["id"], flush=True)
    reads = PatientReads(api)
    with _progress_stream(args.json) as out:
        final = Progress(reads, out, tty=out.isatty()).follow(answer["id"])  # type: ignore[arg-type]
    if args.json:
        print(json_text(final), flush=True)
    else:
        summary(reads, final, sys.stdout)  # type: ignore[arg-type]
    if args.junit:
        from stq.cli.junit import ApiAttempts, write_report

        write_report(args.junit, final, ApiAttempts(reads))  # type: ignore[arg-type]
    return EXIT_OK if final["state"] == "completed" else EXIT_FAILED


@contextmanager
def _progress_stream(json_out: bool) -> Iterator[TextIO]:
    """Where ``--wait`` draws progress: stdout; with ``--json`` a terminal's stderr, or nowhere."""
    if not json_out:
        yield sys.stdout
    elif sys.stderr.isatty():
        yield sys.stderr
    else:
        with open(os.devnull, "w") as nowhere:
            yield nowhere


def add_commands(sub: Any) -> None:
    p = command(sub, "submit", "submit a workflow to a server and print its id", cmd_submit)
    p.add_argument("file", metavar="FILE", help="the workflow file (YAML)")
    p.add_argument("--wait", action="store_true", help="follow it; exit 1 if it fails")
    param_flag(p)
    junit_flag(p)
    json_flag(p, "the server's answer (with --wait: the final workflow)")
    p.add_argument(
        "--answer-timeout",
        type=number(float, 1),
        metavar="SECONDS",
        help="wait this long for the server's answer before sending the submit again with "
        "the same Idempotency-Key (default 15; tries stop after 60 s in all)",
    )
    server_flag(p)
