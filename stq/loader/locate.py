"""Where a place in the document is: its line and column, its path for people and the API.

The schema check and the graph check both name places by a path of keys and
indexes (``("tasks", "build", "depends_on", 0)``). ``Locator`` turns such a path
into a ``Problem``: ``tasks.build.depends_on[0]`` for the message,
``/tasks/build/depends_on/0`` (a JSON Pointer) for the API, and the line and
column from the YAML ``Marks`` when the document came from a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stq.errors import Problem
from stq.loader.yaml_source import Marks

Path = Sequence[str | int]


def dotted(path: Path) -> str:
    """``tasks.build.depends_on[0]``: how a person reads a place.

    A key that is not printable text is quoted (``tasks['a\\n'].command``): the
    message stays on one line and shows the character that is wrong with it.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).isprintable():
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def readable(name: str) -> str:
    """A name as written, or quoted and escaped if it has a character that is not printable.

    A task name with a newline is refused, but the messages that say so (and
    those about its dependencies) must still be one line each.
    """
    return name if name.isprintable() else repr(name)


def pointer(path: Path) -> str:
    """``/tasks/build/depends_on/0``: a JSON Pointer (RFC 6901)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


class Locator:
    """Builds located problems for one document (from a file, or from JSON without marks)."""

    def __init__(self, root: Any, marks: Marks | None = None, filename: str | None = None):
        self.root = root
        self.marks = marks
        self.filename = filename

    def where(self, path: Path, at_key: bool = False) -> tuple[int, int, str | None]:
        """Line, column and source text of the node at ``path`` (of its key if ``at_key``)."""
        if self.marks is None:
            return 1, 1, None
        line, col = self.marks.root
        raw = None
        node = self.root
        for part in path:
            try:
                if isinstance(node, dict):
                    kline, kcol, line, col, raw = self.marks.maps[id(node)][part]  # type: ignore[index]
                    if at_key:
                        line, col = kline, kcol
                else:
                    line, col, _, _, raw = self.marks.lists[id(node)][part]  # type: ignore[index]
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        return line, col, raw

    def raw_text(self, path: Path) -> str | None:
        """The scalar's text as written in the file, if it is not a string there."""
        return self.where(path)[2]

    def problem(self, path: Path, message: str, at_key: bool = False) -> Problem:
        """``dotted.path: message`` located at the node (or its key)."""
        line, col, _ = self.where(path, at_key)
        text = f"{dotted(path)}: {message}" if path else message
        return Problem(text, pointer(path), self.filename, line, col)
