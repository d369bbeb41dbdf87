"""YAML text to plain data, remembering where every node came from.

PyYAML's own loaders lose node positions, accept duplicate keys and expand
aliases without bound. Here libyaml's C parser (``yaml.CSafeLoader``) yields
events and one iterative loop builds dicts, lists and scalars from them, so:

* every key and value keeps its line and column (``Marks``), for messages;
* a duplicate key at any level is a problem, except keys brought in by a merge
  key (``<<``), which the mapping's own keys override;
* aliases share the anchored object, and what each would add to the file if
  written out is counted per use as it is met, so a "billion laughs" file, or
  one long string repeated by aliases, is refused at the alias that takes it
  past the size limit, without expanding anything;
* a scalar its tag (or its look) makes a bool, int or float but that is not
  one (``!!int abc``) is a problem at that scalar, not a crash;
* nesting depth is bounded without recursion.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import yaml

from stq.errors import Problem
from stq.settings import MAX_BODY_BYTES

#: Deepest nesting of mappings and sequences accepted (a workflow needs about 5).
MAX_DEPTH = 100
#: The largest a file may be with every alias written out (docs/workflow-file.md): a
#: rule of its own, weighed while parsing and located at the alias that passes it, with
#: the number of the body limit (``stq.body_limit``): written out, the file must still
#: fit where a file must. Counted as the file's own size plus, per alias, what its
#: anchored node holds: the UTF-8 bytes of its scalars plus one per node (so a billion
#: empty strings count too). A file without aliases is within it.
MAX_EXPANDED_BYTES = MAX_BODY_BYTES
_MIB = MAX_EXPANDED_BYTES // 2**20

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
#: What each of those tags asks a scalar to be, for messages.
_KINDS = {"bool": "true or false", "int": "an integer", "float": "a number"}

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
    #: ``_Builder.weighed`` before this node; if anchored, its weight is the difference.
    weighed_before: int = 0
    key: str | None = None
    key_at: tuple[int, int] = (1, 1)
    merges: list[dict[str, Any]] = field(default_factory=list)


#: Characters libyaml ends a line at that editors do not.
_YAML_ONLY_BREAKS = ("\x85", "\u2028", "\u2029")
#: What ends a line for editors: LF, CRLF, or a CR alone (as libyaml reads them too).
_LINE_END = re.compile("\r\n|\r|\n")


class _Positions:
    """1-based line and column as editors count them: LF, CRLF or CR ends a line.

    libyaml also ends lines at NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR,
    so in a text holding one of those its marks' lines drift from the user's. There
    a position is worked out from the mark's character index (a binary search over
    where lines start); elsewhere the mark is read as it is, at no cost.
    """

    def __init__(self, text: str):
        self.text = text
        self._starts: list[int] | None = None
        self.exact = not any(char in text for char in _YAML_ONLY_BREAKS)

    def of_mark(self, mark: Any) -> tuple[int, int]:
        if self.exact:
            return mark.line + 1, mark.column + 1
        return self.of_index(mark.index)

    def of_index(self, index: int) -> tuple[int, int]:
        """The line and column of character ``index`` of the text."""
        if self._starts is None:
            self._starts = [0, *(end.end() for end in _LINE_END.finditer(self.text))]
        line = bisect_right(self._starts, index)
        return line, index - self._starts[line - 1] + 1


def _utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding it in the common ASCII case."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _shown(text: str) -> str:
    """A scalar's text quoted for a message, cut to a readable length."""
    return repr(text if len(text) <= 40 else text[:20] + "...")


def _unreadable(text: str, tag: str, tagged: bool) -> str:
    """Why a scalar cannot be the bool, int or float its tag (or its look) asks for."""
    kind = tag.rsplit(":", 1)[-1]
    digits = sum(char.isdigit() for char in text)
    limit = sys.get_int_max_str_digits()
    if kind == "int" and limit and digits > limit:
        # Python refuses longer decimal integers (converting them takes quadratic time)
        return f"{_shown(text)} has {digits} digits; an integer may have at most {limit}"
    if tagged:
        return f"{_shown(text)} is tagged !!{kind} but is not {_KINDS[kind]}"
    return f"{_shown(text)} looks like {_KINDS[kind]} but is not one; quote it if it is text"


class _Builder:
    """Turns one stream of parser events into data plus ``Marks``."""

    def __init__(self, filename: str, size: int, positions: _Positions):
        self.filename = filename
        self.positions = positions
        self.marks = Marks()
        self.stack: list[_Frame] = []
        #: anchor -> (value, weight): the node, and what each alias of it adds to ``expanded``
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.root: Any = None
        self.documents = 0
        #: The file's size (UTF-8 bytes) plus the weight of every alias met so far.
        self.expanded = size
        #: Running weight of the nodes met inside anchored nodes (and of aliases).
        self.weighed = 0
        #: Anchored mappings and sequences open: only nodes inside them need weighing.
        self.anchoring = 0

    def fail(self, mark: Any, message: str) -> YamlError:
        line, col = self.positions.of_mark(mark)
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
        """Build and place a scalar; weigh it only if an anchor will need its weight.

        Weighing every key and value of a 100,000-task file would cost about 5%
        of its load time, and only aliases can take a file past the size limit.
        """
        value, raw = self.resolve(event)
        self.add(value, event.start_mark, raw, event)
        if self.anchoring or event.anchor:
            weight = _utf8_size(event.value) + 1
            self.weighed += weight
            if event.anchor:
                self.anchors[event.anchor] = (value, weight)

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
        try:
            return build(yaml.ScalarNode(tag, text)), text
        except (ValueError, KeyError):  # PyYAML's constructors assume the text fits the tag
            raise self.fail(
                event.start_mark, _unreadable(text, tag, event.tag is not None)
            ) from None

    def alias(self, event: Any) -> None:
        """The anchored node again, shared; its weight counts per use, as if written out."""
        try:
            value, weight = self.anchors[event.anchor]
        except KeyError:
            raise self.fail(event.start_mark, f"unknown alias '*{event.anchor}'") from None
        self.expanded += weight
        if self.expanded > MAX_EXPANDED_BYTES:
            raise self.fail(
                event.start_mark,
                f"aliases expand this document past the size limit of {_MIB} MiB; "
                "write it out or use fewer aliases",
            )
        self.weighed += weight
        self.add(value, event.start_mark, None, event)

    def start(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        line, col = self.positions.of_mark(event.start_mark)
        if isinstance(event, yaml.MappingStartEvent):
            frame = _Frame({}, {}, line, col, event.anchor, self.weighed)
        else:
            frame = _Frame([], [], line, col, event.anchor, self.weighed)
        self.stack.append(frame)
        if event.anchor:
            self.anchoring += 1
        if self.anchoring:
            self.weighed += 1

    def end(self, event: Any) -> None:
        frame = self.stack.pop()
        value = frame.value
        if isinstance(value, dict):
            self.apply_merges(frame)
            self.marks.maps[id(value)] = frame.where  # type: ignore[assignment]
        else:
            self.marks.lists[id(value)] = frame.where  # type: ignore[assignment]
        if frame.anchor:
            self.anchoring -= 1
            self.anchors[frame.anchor] = (value, self.weighed - frame.weighed_before)
        self.add(value, None, None, event, (frame.line, frame.col))

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
        raw: str | None,
        event: Any,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Place a finished node in its parent, or make it the document."""
        if at is None:
            line, col = self.positions.of_mark(mark)
        else:
            line, col = at
        if not self.stack:
            self.root = value
            self.marks.root = (line, col)
            return
        frame = self.stack[-1]
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


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """The line and column of the character at UTF-8 byte ``offset`` of ``text``."""
    before = text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "replace")
    return _Positions(text).of_index(len(before))


def _reader_problem(ex: yaml.reader.ReaderError, text: str, filename: str) -> Problem:
    """A character YAML does not allow (NUL, BEL...), at its place, in one line.

    libyaml's reader errors carry no mark, only ``position``: a byte offset into
    the UTF-8 it was given; their ``str()`` spans two lines.
    """
    line, col = _line_col(text, ex.position)
    if isinstance(ex.character, int):
        code = f"{ex.character:04X}"
        message = (
            f"not valid YAML: unacceptable character U+{code}: {ex.reason} "
            f'(remove it, or write "\\u{code}" in a double-quoted string)'
        )
    else:
        message = f"not valid YAML: {ex.reason}"
    return Problem(message, "", filename, line, col)


def parse_yaml(text: str, filename: str) -> tuple[Any, Marks]:
    """The document's data and the position of every node; ``YamlError`` when unusable."""
    positions = _Positions(text)
    builder = _Builder(filename, _utf8_size(text), positions)
    try:
        root = builder.run(yaml.parse(text, Loader=yaml.CSafeLoader))
    except yaml.MarkedYAMLError as ex:
        mark = ex.problem_mark or ex.context_mark
        line, col = positions.of_mark(mark) if mark else (1, 1)
        what = ": ".join(part for part in (ex.context, ex.problem) if part)
        raise YamlError(Problem(f"not valid YAML: {what}", "", filename, line, col)) from None
    except yaml.reader.ReaderError as ex:
        raise YamlError(_reader_problem(ex, text, filename)) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as ex:
        what = " ".join(str(ex).split())  # one line, whatever the library wrote
        raise YamlError(Problem(f"not valid YAML: {what}", "", filename, 1, 1)) from None
    return root, builder.marks
