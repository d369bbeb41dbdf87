"""YAML text to plain data, remembering where every node came from.

PyYAML's own loaders lose node positions, accept duplicate keys and expand
aliases without bound. Here libyaml's C parser (``yaml.CSafeLoader``) yields
events and one iterative loop builds dicts, lists and scalars from them, so:

* every key and value keeps its line and column (``Marks``), for messages;
* a duplicate key at any level is a problem, except keys brought in by a merge
  key (``<<``), which the mapping's own keys override;
* aliases share the anchored object, and the size the data would have once
  expanded is counted as it is built, so a "billion laughs" file stops early;
* nesting depth is bounded without recursion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from stq.errors import Problem

#: Deepest nesting of mappings and sequences accepted (a workflow needs about 5).
MAX_DEPTH = 100
#: Nodes the document may have once every alias is expanded (a 16 MiB file has fewer).
MAX_EXPANDED_NODES = 8_000_000

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_BUILDERS = {
    "tag:yaml.org,2002:null": lambda node: None,
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
}

#: (line, col) of a key and of its value, 1-based, and the value's source text
#: when it is a scalar that is not a string (``env`` passes it on as written).
Where = tuple[int, int, int, int, str | None]


class YamlError(Exception):
    """The text is not a workflow-shaped YAML document; carries one located problem."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Marks:
    """Positions of every node, keyed by ``id()`` of the dict or list holding it."""

    maps: dict[int, dict[str, Where]] = field(default_factory=dict)
    lists: dict[int, list[Where]] = field(default_factory=dict)
    root: tuple[int, int] = (1, 1)


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built."""

    value: Any
    where: dict[str, Where] | list[Where]
    line: int
    col: int
    anchor: str | None
    size: int = 1
    key: str | None = None
    key_at: tuple[int, int] = (1, 1)
    merges: list[dict[str, Any]] = field(default_factory=list)


def _at(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    """Turns one stream of parser events into data plus ``Marks``."""

    def __init__(self, filename: str):
        self.filename = filename
        self.marks = Marks()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.root: Any = None
        self.documents = 0

    def fail(self, mark: Any, message: str) -> YamlError:
        line, col = _at(mark)
        return YamlError(Problem(message, "", self.filename, line, col))

    def run(self, events: Any) -> Any:
        handlers = {
            yaml.ScalarEvent: self.scalar,
            yaml.AliasEvent: self.alias,
            yaml.MappingStartEvent: self.start,
            yaml.SequenceStartEvent: self.start,
            yaml.MappingEndEvent: self.end,
            yaml.SequenceEndEvent: self.end,
            yaml.DocumentStartEvent: self.document,
        }
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        if self.documents == 0:
            raise YamlError(
                Problem(
                    "the file is empty: a workflow needs 'name' and 'tasks'",
                    "",
                    self.filename,
                    1,
                    1,
                )
            )
        return self.root

    def document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise self.fail(
                event.start_mark,
                "more than one YAML document: a file holds one workflow (remove the extra '---')",
            )

    def scalar(self, event: Any) -> None:
        value, raw = self.resolve(event)
        self.add(value, event.start_mark, 1, raw, event)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)

    def resolve(self, event: Any) -> tuple[Any, str | None]:
        """The scalar's value as the YAML 1.1 core schema types it, and its text if not a str."""
        text = event.value
        plain, tag = event.implicit[0], event.tag
        if plain and tag is None and text[:1] not in _IMPLICIT:
            return text, None  # the common case: a plain word that cannot be a number etc.
        if plain and tag is None:
            tag = _STR
            for candidate, regexp in _IMPLICIT.get(text[:1], ()):
                if regexp.match(text):
                    tag = candidate
                    break
        elif tag in (None, "!"):
            return text, None
        build = _BUILDERS.get(tag)
        if build is None:
            return text, None  # str, timestamps, merge and unknown tags stay text
        return build(yaml.ScalarNode(tag, text)), text

    def alias(self, event: Any) -> None:
        try:
            value, size = self.anchors[event.anchor]
        except KeyError:
            raise self.fail(event.start_mark, f"unknown alias '*{event.anchor}'") from None
        self.add(value, event.start_mark, size, None, event)

    def start(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        line, col = _at(event.start_mark)
        if isinstance(event, yaml.MappingStartEvent):
            frame = _Frame({}, {}, line, col, event.anchor)
        else:
            frame = _Frame([], [], line, col, event.anchor)
        self.stack.append(frame)

    def end(self, event: Any) -> None:
        frame = self.stack.pop()
        value = frame.value
        if isinstance(value, dict):
            self.apply_merges(frame)
            self.marks.maps[id(value)] = frame.where  # type: ignore[assignment]
        else:
            self.marks.lists[id(value)] = frame.where  # type: ignore[assignment]
        if frame.anchor:
            self.anchors[frame.anchor] = (value, frame.size)
        self.add(value, None, frame.size, None, event, (frame.line, frame.col))

    def apply_merges(self, frame: _Frame) -> None:
        """Keys from ``<<`` mappings fill in what the mapping does not set itself."""
        for source in frame.merges:
            where = self.marks.maps.get(id(source), {})
            for key, item in source.items():
                if key not in frame.value:
                    frame.value[key] = item
                    frame.where[key] = where.get(key, (1, 1, 1, 1, None))  # type: ignore[call-overload]

    def add(
        self,
        value: Any,
        mark: Any,
        size: int,
        raw: str | None,
        event: Any,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Place a finished node in its parent, or make it the document."""
        if at is None:
            line, col = mark.line + 1, mark.column + 1
        else:
            line, col = at
        if not self.stack:
            self.root = value
            self.marks.root = (line, col)
            return
        frame = self.stack[-1]
        frame.size += size
        if frame.size > MAX_EXPANDED_NODES:
            raise self.fail(
                event.start_mark,
                "aliases expand this document past "
                f"{MAX_EXPANDED_NODES} nodes; write it out or use fewer aliases",
            )
        if frame.value.__class__ is list:
            frame.value.append(value)
            frame.where.append((line, col, line, col, raw))  # type: ignore[union-attr]
        elif frame.key is None:
            self.take_key(frame, value, event, line, col)
        else:
            self.put(frame, value, line, col, raw)

    def take_key(self, frame: _Frame, value: Any, event: Any, line: int, col: int) -> None:
        if isinstance(event, yaml.ScalarEvent):
            frame.key = "<<" if event.value == "<<" and event.implicit[0] else event.value
        elif isinstance(value, str):
            frame.key = value
        else:
            raise self.fail(
                event.start_mark, "a mapping key must be a plain value, not a mapping or a list"
            )
        frame.key_at = (line, col)

    def put(self, frame: _Frame, value: Any, line: int, col: int, raw: str | None) -> None:
        key, (kline, kcol) = frame.key, frame.key_at
        frame.key = None
        if key == "<<":
            self.merge(frame, value, kline, kcol)
            return
        if key in frame.where:
            first = frame.where[key]  # type: ignore[call-overload]
            raise YamlError(
                Problem(
                    f"duplicate key '{key}' (first at line {first[0]})",
                    "",
                    self.filename,
                    kline,
                    kcol,
                )
            )
        frame.value[key] = value
        frame.where[key] = (kline, kcol, line, col, raw)  # type: ignore[call-overload]

    def merge(self, frame: _Frame, value: Any, line: int, col: int) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            raise YamlError(
                Problem(
                    "a merge key '<<' needs a mapping or a list of mappings",
                    "",
                    self.filename,
                    line,
                    col,
                )
            )
        frame.merges.extend(sources)


def parse_yaml(text: str, filename: str) -> tuple[Any, Marks]:
    """The document's data and the position of every node; ``YamlError`` when unusable."""
    builder = _Builder(filename)
    try:
        root = builder.run(yaml.parse(text, Loader=yaml.CSafeLoader))
    except yaml.MarkedYAMLError as ex:
        mark = ex.problem_mark or ex.context_mark
        line, col = _at(mark) if mark else (1, 1)
        what = ": ".join(part for part in (ex.context, ex.problem) if part)
        raise YamlError(Problem(f"not valid YAML: {what}", "", filename, line, col)) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as ex:
        raise YamlError(Problem(f"not valid YAML: {ex}", "", filename, 1, 1)) from None
    return root, builder.marks
