"""``main``: run one ``stq`` command, the only place that catches.

An ``StqError`` becomes one line on stderr and its exit code, anything
unexpected one line too (the traceback only with ``-v``): users never see a
Python traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence

from stq.cli.parser import ArgparseError, build_parser
from stq.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, StqError
from stq.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``stq`` command; never let a traceback reach the user unless ``-v``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _skip_unlogged_record_fields()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args, Settings.from_env())
    except ArgparseError as ex:
        print(ex, file=sys.stderr)
        return EXIT_USAGE
    except StqError as ex:
        if verbose:
            traceback.print_exc()
        print(f"stq: {_lowercase_start(ex.message)}", file=sys.stderr)
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


def _skip_unlogged_record_fields() -> None:
    """Stop logging from gathering what the format above never prints.

    The switches of the logging HOWTO's "Optimization" section: caller
    (a stack walk), thread, process. A runner logs two lines per attempt;
    this took each from ~85 to ~50 us on the 2-core benchmark machine.
    """
    logging._srcfile = None  # the HOWTO's own switch for caller information
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _lowercase_start(message: str) -> str:
    """'No task with id ...' -> 'no task with id ...': every line of ``stq`` starts lowercase.

    The server's messages are sentences; only a capitalised first word is
    lowered, so a name such as ``STQ_TOKEN`` or a URL stays as it is.
    """
    first = message.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower():
        return message[0].lower() + message[1:]
    return message
