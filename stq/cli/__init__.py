"""The ``stq`` command line: one argparse tree, one place that turns errors into exit codes.

``main`` (``stq.cli.entry``) runs a command; ``build_parser`` (``stq.cli.parser``)
is every command and flag. Each group of commands owns its flags and what it does
(``stq.cli.submit``, ``stq.cli.status``, ...); the heavy lifting lives in the
modules named after what they do (``stq.loader``, ``stq.worker.client``,
``stq.cli.local``, ...), imported only by the commands that need them.
"""

from __future__ import annotations

from stq.cli.entry import main
from stq.cli.parser import build_parser

__all__ = ["build_parser", "main"]
