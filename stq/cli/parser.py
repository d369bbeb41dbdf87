"""``build_parser``: every ``stq`` command and flag in one argparse tree.

Each group of commands adds its own (``add_commands``); this module holds what
they share: the program's help, ``--version``, ``-v`` on every command, and a
parser that raises instead of exiting, so usage errors go through ``main``.
"""

from __future__ import annotations

import argparse

from stq import __version__
from stq.cli import admin, logs, processes, status, submit, validate

EPILOG = """\
environment:
  STQ_SERVER             server URL for submit/status/logs/runners/cancel/retry and
                         worker (default http://127.0.0.1:8000)
  STQ_TOKEN              bearer token sent to (client) or required by (server) the API
  STQ_DB                 server store: a file path (default stq.db) or a postgresql:// URL
  STQ_HEARTBEAT_TIMEOUT  server: seconds without a heartbeat before an attempt is lost (60)
  STQ_ALLOWED_HOSTS      server: host names clients use beyond loopback (comma-separated),
                         e.g. behind a proxy; with no token, other Host names are refused

examples:
  stq validate workflows/examples/*.yaml
  stq run workflows/examples/build-and-test.yaml -j 4
  stq server --bind 127.0.0.1:8000 &  stq worker &  stq submit etl.yaml --wait
  stq submit ci.yaml --param BRANCH=dev --wait --json | jq -r .state
"""
#: The groups of commands, in the order ``stq --help`` lists them.
GROUPS = (validate, submit, status, logs, admin, processes)


class ArgparseError(Exception):
    """A usage error argparse found: ``main`` prints it and exits 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors go through ``main``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgparseError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """Every ``stq`` subcommand and flag; help texts name their environment variables."""
    parser = _Parser(
        prog="stq",
        description="SimpleTaskQueue: run a DAG of shell commands across many machines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stq {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="more output; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for group in GROUPS:
        group.add_commands(sub)
    for command in sub.choices.values():  # -v works after the subcommand too
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="more output"
        )
    return parser
