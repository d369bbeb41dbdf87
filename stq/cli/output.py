"""What commands print beside their tables: JSON for ``--json``, notes on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def json_text(data: Any) -> str:
    """One JSON document as ``--json`` prints it: what the API answered, indented."""
    return json.dumps(data, indent=2)


def say(message: str) -> None:
    """A line on stderr while a command goes on (stdout keeps only its results)."""
    print(f"stq: {message}", file=sys.stderr, flush=True)
