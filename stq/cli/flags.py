"""The argparse pieces ``stq``'s commands share, so a flag reads the same on every command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from stq.settings import Settings

#: What a command runs: the parsed arguments and the environment's settings in, an exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]


def command(sub: Any, name: str, summary: str, handler: Handler) -> argparse.ArgumentParser:
    """A subcommand whose own ``--help`` opens with the line ``stq --help`` lists it with."""
    p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    p.set_defaults(handler=handler)
    return p


def number(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` from ``low`` up to ``high`` (if given)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}: {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}: {text!r}")
        return value

    return parse


def server_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="server URL (env: STQ_SERVER)")


def workflow_id(p: argparse.ArgumentParser, **kw: Any) -> None:
    p.add_argument(
        "workflow_id", metavar="WORKFLOW_ID", help="a workflow's id, as stq status lists it", **kw
    )


def param_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="set the value of a param the file declares (repeatable); "
        "a name it does not declare is refused",
    )


def json_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def junit_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--junit",
        metavar="FILE",
        help="also write a JUnit XML report there when the workflow ends (for CI test views)",
    )
