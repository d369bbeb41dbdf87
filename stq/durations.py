"""Durations as workflow files write them (docs/workflow-file.md), and back for display.

A workflow file may say ``90``, ``1.5``, ``"90"``, ``"90s"``, ``"10m"``,
``"1h30m"`` or ``"1m30s"``; everything inside STQ works in float seconds.
Parsing lives here, once, so the loader, the CLI and the dashboard agree.
"""

from __future__ import annotations

import re

_PARTS = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = ((3600, "h"), (60, "m"))


def parse_duration(value: object, zero_ok: bool = False) -> float:
    """Seconds for a duration; ``ValueError`` with a readable reason when it is not one.

    ``zero_ok``: 0 is a duration too (a ``retry_delay`` may be none at all).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f"{value!r} is not a duration")
    if zero_ok and seconds == 0:
        return 0.0
    if not seconds > 0 or seconds == float("inf"):
        least = "0 seconds or more" if zero_ok else "greater than 0 seconds"
        raise ValueError(f"{value!r} must be {least}")
    return seconds


def _parse_text(text: str) -> float:
    """``"90"`` or ``<int>h<int>m<int>s`` parts (each optional, in that order) to seconds."""
    if text.isdigit():
        return float(text)
    match = _PARTS.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like '90', '90s', '10m' or '1h30m'")
    hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def format_duration(seconds: float) -> str:
    """A short human form: ``5400 -> "1h30m"``, ``90 -> "90s"``, ``1.5 -> "1.5s"``.

    Whole minutes and hours are folded only when nothing is lost, so the
    output parses back to the same number of seconds.
    """
    if seconds != int(seconds) or seconds < 120:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    rest = int(seconds)
    out = []
    for size, unit in _UNITS:
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        out.append(f"{rest}s")
    return "".join(out)
