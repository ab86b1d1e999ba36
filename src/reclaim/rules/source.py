"""Reading YAML into plain Python values while remembering where every key and value came from.

We build the values ourselves from parser events instead of using a constructor, for four
reasons: every key and scalar keeps its line and column (so any later error can point
into the file); duplicate keys are all reported, not only the first; the builder is iterative,
so a deeply nested file cannot overflow the Python stack; and aliases are counted by the size of
what they stand for, so a "billion laughs" file is rejected after reading a few hundred bytes
instead of being expanded. Aliases reuse the anchored object rather than copying it.

The events come from libyaml's C parser (through PyYAML) when it is installed, which reads a
file about 20 times faster than ruamel.yaml's pure-Python parser; values are resolved and built
as ruamel.yaml does (YAML 1.2: ``yes`` is text; see :mod:`reclaim.rules.scalars`). Any file the
C parser refuses, and any file with a ``%`` directive, is read again by ruamel.yaml's parser
(imported then), so syntax errors and their file:line:col are the same either way.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_YAML_LIMITS",
    "Path",
    "Position",
    "YamlDocument",
    "YamlLimits",
    "load_yaml",
    "read_rule_file",
    "shorten",
]

import datetime
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules.errors import DuplicateKeyError, RuleFileError, YamlLimitError, YamlSyntaxError
from reclaim.rules.scalars import NOT_PLAIN, implicit_tag, plain_value

#: A path into a document: mapping keys and sequence indexes from the root.
Path = tuple[Any, ...]

#: A parser event, from PyYAML's C parser or ruamel.yaml's (the same shape).
Event = Any


class _NeedsRuamel(Exception):
    """The C parser's events would not mean what ruamel.yaml's mean (a ``%`` directive)."""


try:
    from yaml import CBaseLoader as _CParser
    from yaml import YAMLError as _CYamlError
except ImportError:  # PyYAML absent, or built without libyaml: ruamel.yaml reads every file
    _CParser = None
    _CYamlError = _NeedsRuamel

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = frozenset(
    {
        _STR,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:timestamp",
    }
)
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


@dataclass(frozen=True)
class YamlLimits:
    """Bounds checked while reading, before the content is used.

    ``max_nodes`` and ``max_expanded_bytes`` count the document after alias expansion: an
    alias costs as many nodes and bytes as the node it names. Nodes stop exponential alias
    bombs; bytes stop linear ones (one long anchored string repeated by thousands of aliases
    stays under any node limit, yet every evaluator would copy it thousands of times).
    """

    max_bytes: int = 1_000_000
    """Bytes of the file. Reading YAML costs about 4 s per MB on one core with ruamel.yaml's
    pure-Python parser (libyaml's takes a twentieth of that, but a file it refuses is read
    again by ruamel.yaml, and libyaml may be absent), which with the per-file limits of
    :class:`Limits` keeps any file that passes within the 10 s budget of checking and first
    evaluation (docs/rules.md, "Limits")."""
    max_depth: int = 64
    max_nodes: int = 500_000
    max_expanded_bytes: int = 1_000_000
    """Characters of scalar text after alias expansion (by default no more than a file may
    hold: aliases may shorten a file, not make it bigger)."""


DEFAULT_YAML_LIMITS = YamlLimits()


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in the file, plus the scalar's quoting style if it is one."""

    line: int
    column: int
    style: str | None = None


@dataclass
class YamlDocument:
    """The values of one YAML document and the position of each key and value in it."""

    path: str
    text: str
    data: Any
    key_positions: dict[Path, Position] = field(default_factory=dict)
    value_positions: dict[Path, Position] = field(default_factory=dict)

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines, split once: every error of a file is located in them, and
        splitting per error made reporting N errors cost N times the file."""
        return self.text.splitlines()

    def location(self, path: Path, *, key: bool = False) -> SourceLocation:
        """Where ``path`` is in the file; the nearest enclosing item when it is not recorded.

        With ``key=True`` the position of the mapping key is preferred (for "unknown key").
        """
        for depth in range(len(path), -1, -1):
            prefix = tuple(path[:depth])
            table = self.key_positions if key else self.value_positions
            position = table.get(prefix) or self.value_positions.get(prefix)
            if position is not None:
                return SourceLocation(self.path, position.line, position.column)
        return SourceLocation(self.path, 1, 1)

    def text_location(self, path: Path) -> SourceLocation:
        """Where the text of the string scalar at ``path`` starts (after any quote or ``|``).

        Expression errors are mapped from offsets in the string to this location.
        """
        position = self.value_positions.get(tuple(path))
        if position is None:
            return self.location(path)
        if position.style in ('"', "'"):
            return SourceLocation(self.path, position.line, position.column + 1)
        if position.style in ("|", ">"):
            # Block scalar content starts on the next non-empty line, at its indentation.
            lines = self.lines
            for number in range(position.line, len(lines)):
                content = lines[number]
                if content.strip():
                    indent = len(content) - len(content.lstrip(" "))
                    return SourceLocation(self.path, number + 1, indent + 1)
        return SourceLocation(self.path, position.line, position.column)

    def locate_in_text(self, path: Path, line: int, column: int) -> SourceLocation:
        """Where ``line``/``column`` (1-based) of the string scalar at ``path`` is in the file.

        A literal block (``|``) keeps its lines, each indented like the first. Every other
        style folds its source lines into one, joined by single spaces, so an offset in the
        value is walked back across the source lines it came from.
        """
        start = self.text_location(path)
        position = self.value_positions.get(tuple(path))
        if position is None or start.line is None or start.column is None:
            return start
        if position.style == "|" or line > 1:
            return SourceLocation(self.path, start.line + line - 1, start.column + column - 1)
        lines = self.lines
        offset = column - 1
        number = start.line
        content_column = start.column
        while number <= len(lines):
            source = lines[number - 1]
            content = source[content_column - 1 :].rstrip()
            if offset <= len(content) or number == len(lines):
                return SourceLocation(self.path, number, content_column + offset)
            offset -= len(content) + 1
            number += 1
            following = lines[number - 1] if number <= len(lines) else ""
            content_column = len(following) - len(following.lstrip(" ")) + 1
        return start


@dataclass
class _Frame:
    kind: str  # "map" or "seq"
    value: Any
    path: Path
    anchor: str | None
    start_nodes: int
    start_bytes: int
    pending_key: Any = None
    has_key: bool = False
    key_position: Position | None = None
    merge_pending: bool = False
    merges: list[Any] = field(default_factory=list)


_MISSING = object()


class _Builder:
    def __init__(self, path: str, text: str, limits: YamlLimits, *, from_libyaml: bool) -> None:
        self.path = path
        self.from_libyaml = from_libyaml
        self.text = text
        self.limits = limits
        self._constructor: Any = None
        self._resolved: dict[tuple[str, Any], str] = {}
        self.document = YamlDocument(path, text, None)
        self.errors: list[ConfigError] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.nodes = 0
        self.bytes = 0
        self.stack: list[_Frame] = []
        self.root: Any = _MISSING
        self.documents = 0

    def _loc(self, event: Event) -> SourceLocation:
        mark = event.start_mark
        return SourceLocation(self.path, mark.line + 1, mark.column + 1)

    def _position(self, event: Event, style: str | None = None) -> Position:
        mark = event.start_mark
        return Position(mark.line + 1, mark.column + 1, style)

    def _count(self, amount: int, event: Event, size: int = 0) -> None:
        self.nodes += amount
        self.bytes += size
        if self.nodes > self.limits.max_nodes:
            raise YamlLimitError(
                f"the document expands to more than {self.limits.max_nodes:,} nodes "
                "(aliases count as the size of what they repeat)",
                location=self._loc(event),
                fix="split the file, or remove aliases that repeat large parts",
            )
        if self.bytes > self.limits.max_expanded_bytes:
            raise YamlLimitError(
                f"the document expands to more than {self.limits.max_expanded_bytes:,} "
                "characters of text (aliases count as the size of what they repeat)",
                location=self._loc(event),
                fix="remove aliases that repeat long values, or split the file",
            )

    def build(self, events: Iterable[Event]) -> YamlDocument:
        handlers = {
            "DocumentStartEvent": self._document,
            "ScalarEvent": self._scalar,
            "MappingStartEvent": self._start,
            "SequenceStartEvent": self._start,
            "MappingEndEvent": self._end,
            "SequenceEndEvent": self._end,
            "AliasEvent": self._alias,
        }
        # Both parsers name their event classes alike; the rest (stream and document end)
        # carries nothing to build.
        for event in events:
            handler = handlers.get(type(event).__name__)
            if handler is not None:
                handler(event)
        if self.errors:
            raise RuleFileError(self.errors)
        self.document.data = None if self.root is _MISSING else self.root
        return self.document

    def _document(self, event: Event) -> None:
        if self.from_libyaml and (event.version or event.tags):
            raise _NeedsRuamel
        self.documents += 1
        if self.documents > 1:
            raise YamlSyntaxError(
                "the file holds more than one YAML document",
                location=self._loc(event),
                fix="keep one document per file; remove the second '---'",
            )

    def _tag(self, event: Event) -> str | None:
        tag = event.tag
        if tag is None:
            return None
        value = getattr(tag, "value", tag)
        return str(value) if value is not None else None

    def _scalar(self, event: Event) -> None:
        self._count(1, event, len(event.value))
        tag = self._tag(event)
        if tag is None and not event.implicit[0]:
            # Quoted and block scalars are text: no resolver or constructor needed.
            tag = _STR
        if tag == _STR and not event.anchor:
            self._add(event.value, event, self._position(event, event.style or None))
            return
        implicit = tag is None or tag == "!"
        if implicit:
            # A plain scalar's tag depends on its text alone (within one document): keys and
            # repeated values are resolved once, not once per rule.
            known = (event.value, event.implicit)
            tag = self._resolved.get(known)
            if tag is None:
                tag = self._resolved[known] = implicit_tag(event.value, event.implicit)
        top = self.stack[-1] if self.stack else None
        if top is not None and top.kind == "map" and not top.has_key and tag == _MERGE:
            top.merge_pending = True
            top.has_key = True
            top.pending_key = _MERGE
            return
        if tag not in _SCALAR_TAGS:
            raise YamlSyntaxError(
                f"unsupported YAML tag {tag!r}",
                location=self._loc(event),
                fix="remove the tag; rule files use plain strings, numbers, booleans and dates",
            )
        if tag == _STR:
            # What ruamel.yaml's safe constructor gives for a string, without the node.
            self._add_scalar(event.value, event)
            return
        # An explicit tag (``!!bool on``) is the constructor's to read, whatever the text.
        value = plain_value(tag, event.value) if implicit else NOT_PLAIN
        if value is NOT_PLAIN:
            value = self._construct(tag, event)
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            value = datetime.datetime(value.year, value.month, value.day)
        self._add_scalar(value, event)

    def _construct(self, tag: str, event: Event) -> Any:
        """The value of a scalar built by ruamel.yaml's safe constructor (imported now)."""
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError
        from ruamel.yaml.nodes import ScalarNode

        if self._constructor is None:
            self._constructor = YAML(typ="safe", pure=True).constructor
        node = ScalarNode(
            tag, event.value, event.start_mark, event.end_mark, style=event.style or None
        )
        try:
            return self._constructor.yaml_constructors[tag](self._constructor, node)
        except (ValueError, YAMLError) as exc:
            raise YamlSyntaxError(
                f"cannot read {shorten(event.value)} as {tag.rsplit(':', 1)[-1]}: "
                f"{shorten(str(exc), 200)}",
                location=self._loc(event),
                fix="quote the value to keep it as text",
            ) from exc

    def _add_scalar(self, value: Any, event: Event) -> None:
        if event.anchor:
            self.anchors[event.anchor] = (value, 1, len(event.value))
        # PyYAML marks a plain scalar with style "", ruamel.yaml with None.
        self._add(value, event, self._position(event, event.style or None))

    def _start(self, event: Event) -> None:
        self._count(1, event)
        if len(self.stack) >= self.limits.max_depth:
            raise YamlLimitError(
                f"the document nests deeper than {self.limits.max_depth} levels",
                location=self._loc(event),
                fix="flatten the structure",
            )
        tag = self._tag(event)
        kind = "map" if type(event).__name__ == "MappingStartEvent" else "seq"
        if tag not in (None, "!", _MAP_TAG if kind == "map" else _SEQ_TAG):
            raise YamlSyntaxError(
                f"unsupported YAML tag {tag!r}",
                location=self._loc(event),
                fix="remove the tag",
            )
        container: Any = {} if kind == "map" else []
        path = self._child_path(event)
        self.document.value_positions[path] = self._position(event)
        self.stack.append(_Frame(kind, container, path, event.anchor, self.nodes - 1, self.bytes))

    def _end(self, event: Event) -> None:
        frame = self.stack.pop()
        if frame.kind == "map" and frame.merges:
            for merged in frame.merges:
                for key, value in merged.items():
                    frame.value.setdefault(key, value)
        if frame.anchor:
            self.anchors[frame.anchor] = (
                frame.value,
                self.nodes - frame.start_nodes,
                self.bytes - frame.start_bytes,
            )
        self._attach(frame.value, frame.path)

    def _alias(self, event: Event) -> None:
        anchor = event.anchor
        if anchor not in self.anchors:
            raise YamlSyntaxError(
                f"alias *{anchor} refers to no anchor before it",
                location=self._loc(event),
                fix=f"define &{anchor} earlier in the file",
            )
        value, nodes, size = self.anchors[anchor]
        self._count(nodes, event, size)
        self._add(value, event, self._position(event))

    def _child_path(self, event: Event) -> Path:
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if parent.kind == "seq":
            return (*parent.path, len(parent.value))
        if not parent.has_key:
            raise YamlSyntaxError(
                "a mapping key must be a plain value, not a list or mapping",
                location=self._loc(event),
                fix="use a string as the key",
            )
        if parent.merge_pending:
            return (*parent.path, "<<")
        return (*parent.path, parent.pending_key)

    def _add(self, value: Any, event: Event, position: Position) -> None:
        if self.stack and self.stack[-1].kind == "map" and not self.stack[-1].has_key:
            frame = self.stack[-1]
            if isinstance(value, dict | list):
                raise YamlSyntaxError(
                    "a mapping key must be a plain value, not a list or mapping",
                    location=self._loc(event),
                    fix="use a string as the key",
                )
            key_path = (*frame.path, value)
            if value in frame.value:
                first = self.document.key_positions.get(key_path)
                where = f" (first at line {first.line})" if first else ""
                self.errors.append(
                    DuplicateKeyError(
                        f"duplicate key {value!r}{where}",
                        location=self._loc(event),
                        fix="remove one of them; YAML would silently keep only the last",
                    )
                )
            else:
                self.document.key_positions[key_path] = position
            frame.pending_key = value
            frame.has_key = True
            frame.key_position = position
            return
        path = self._child_path(event)
        self.document.value_positions.setdefault(path, position)
        self._attach(value, path)

    def _attach(self, value: Any, path: Path) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if frame.kind == "seq":
            frame.value.append(value)
            return
        if frame.merge_pending:
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in merged):
                location = self.document.location(path)
                raise YamlSyntaxError(
                    "'<<' merges only a mapping or a list of mappings",
                    location=location,
                    fix="point '<<' at an anchored mapping, e.g. '<<: *defaults'",
                )
            frame.merges.extend(merged)
            frame.merge_pending = False
        else:
            frame.value[frame.pending_key] = value
        frame.has_key = False
        frame.pending_key = None


def shorten(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut in the middle when long: a value echoed into an error line must
    not make the line as long as the value (a million-digit integer, say)."""
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return f"{text[:half]!r}…{text[-half:]!r} ({len(text):,} characters)"


def read_rule_file(
    path: str | os.PathLike[str], max_bytes: int, *, what: str = "rule file"
) -> bytes:
    """The bytes of the regular file at ``path``, refused (ConfigError) when it is anything
    else or larger than ``max_bytes``.

    Rule files come from pull requests in CI, so the path may be a symlink to /dev/zero (an
    endless read) or a FIFO (an open that never returns). The file is opened without blocking
    and checked with ``fstat`` on the open descriptor, so what is checked is what is read.
    """
    name = str(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {what}: {exc.strerror or exc}",
            location=SourceLocation(name),
            fix="check the path",
        ) from exc
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise ConfigError(
            f"the {what} is not a regular file but {_file_kind(info.st_mode)}",
            location=SourceLocation(name),
            fix="give the path of a regular file, or of a symlink to one",
        )
    with os.fdopen(descriptor, "rb") as handle:
        if info.st_size > max_bytes:
            raise _too_big(info.st_size, max_bytes, name, what)
        # Read one byte past the limit: a file that grows after fstat is still caught.
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes, name, what)
    return data


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((text for test, text in kinds if test(mode)), "a special file")


def _too_big(size: int, max_bytes: int, path: str, what: str = "rule file") -> YamlLimitError:
    return YamlLimitError(
        f"the file is {size:,} bytes, more than the {max_bytes:,} a {what} may be",
        location=SourceLocation(path),
        fix="split it into several files in one folder",
    )


def load_yaml(
    text: str | bytes, path: str = "<string>", *, limits: YamlLimits = DEFAULT_YAML_LIMITS
) -> YamlDocument:
    """Parse one YAML document into plain values (dict, list, str, int, float, bool, None,
    datetime) with positions.

    Raises :class:`YamlSyntaxError` or :class:`YamlLimitError` for the first fatal problem, and
    :class:`RuleFileError` listing every duplicate key when the document is otherwise readable.
    """
    size = len(text)
    if size > limits.max_bytes:
        raise _too_big(size, limits.max_bytes, path)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlSyntaxError(
                f"the file is not UTF-8 text (byte {exc.start})",
                location=SourceLocation(path),
                fix="save it as UTF-8",
            ) from exc
    if _CParser is not None:
        try:
            return _Builder(path, text, limits, from_libyaml=True).build(_c_events(text))
        except (_CYamlError, _NeedsRuamel):
            pass
    return _read_with_ruamel(path, text, limits)


def _c_events(text: str) -> Iterator[Event]:
    assert _CParser is not None
    parser = _CParser(str(text))  # exactly str: the C parser refuses subclasses
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def _read_with_ruamel(path: str, text: str, limits: YamlLimits) -> YamlDocument:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _Builder(path, text, limits, from_libyaml=False).build(
            YAML(typ="safe", pure=True).parse(text)
        )
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = (
            SourceLocation(path, mark.line + 1, mark.column + 1)
            if mark is not None
            else SourceLocation(path)
        )
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" {exc.context}" if exc.context and exc.problem else ""
        raise YamlSyntaxError(
            f"YAML syntax error: {problem}{context}",
            location=location,
            fix="check the indentation and quoting on this line or the one before it",
        ) from exc
    except YAMLError as exc:
        raise YamlSyntaxError(
            f"YAML syntax error: {exc}",
            location=SourceLocation(path),
            fix="check the file is valid YAML",
        ) from exc
