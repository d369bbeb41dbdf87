"""The ``stq`` command: one argparse tree, one place that turns errors into exit codes.

Each subcommand is a small function taking the parsed arguments and the
``Settings``; the heavy lifting lives in the modules named after what they do
(``stq.loader``, ``stq.client``, ``stq.worker``, ``stq.local``, ...). ``main``
is the only place that catches: an ``StqError`` becomes one line on stderr and
its exit code, anything unexpected one line too (the traceback only with ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from stq import __version__
from stq.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, StqError, WorkflowInvalid
from stq.settings import Settings

EPILOG = """\
environment:
  STQ_SERVER             server URL for submit/status/logs/cancel/retry/worker
                         (default http://127.0.0.1:8000)
  STQ_TOKEN              bearer token sent to (client) or required by (server) the API
  STQ_DB                 server store: a file path (default stq.db) or a postgresql:// URL
  STQ_HEARTBEAT_TIMEOUT  server: seconds without a heartbeat before an attempt is lost (60)

examples:
  stq validate workflows/examples/*.yaml
  stq run workflows/examples/build-and-test.yaml -j 4
  stq server --bind 127.0.0.1:8000 &  stq worker &  stq submit etl.yaml --wait
"""

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors go through ``main``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgparseError(f"{self.prog}: {message} (see '{self.prog} --help')")


class _ArgparseError(Exception):
    pass


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    """Check files offline; print every problem of every file."""
    from stq.loader import load_workflow_file

    status = EXIT_OK
    for path in args.files:
        try:
            spec = load_workflow_file(path)
        except WorkflowInvalid as ex:
            for problem in ex.problems:
                print(problem, file=sys.stdout)
            status = EXIT_FAILED
        else:
            if args.verbose:
                print(f"{path}: ok ({len(spec.tasks)} tasks)")
    return status


def _not_yet(name: str) -> Handler:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        print(f"stq {name}: not implemented yet", file=sys.stderr)
        return EXIT_USAGE

    return handler


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

    p = sub.add_parser("validate", help="check workflow files offline")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=cmd_validate)

    for name, text in [
        ("submit", "submit a workflow to a server"),
        ("worker", "run a runner against one or more servers"),
        ("server", "run the API server under gunicorn"),
        ("run", "run a workflow start to end on this machine"),
        ("status", "show workflows, or one workflow's tasks"),
        ("logs", "show the output of a task's attempt"),
        ("cancel", "cancel a workflow"),
        ("retry", "retry a workflow's failed tasks"),
    ]:
        p = sub.add_parser(name, help=text)
        p.add_argument("rest", nargs="*")
        p.set_defaults(handler=_not_yet(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``stq`` command; never let a traceback reach the user unless ``-v``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args, Settings.from_env())
    except _ArgparseError as ex:
        print(ex, file=sys.stderr)
        return EXIT_USAGE
    except StqError as ex:
        if verbose:
            traceback.print_exc()
        print(f"stq: {ex.message}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        print("stq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as ex:  # the last line of defence: one line, not a traceback
        if verbose:
            traceback.print_exc()
        print(f"stq: unexpected error: {type(ex).__name__}: {ex} (run with -v)", file=sys.stderr)
        return EXIT_FAILED
