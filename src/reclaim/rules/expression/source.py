"""Expression text with its place in a file: positions, spans and located errors."""

from __future__ import annotations

__all__ = ["SourceText", "offset"]

import ast
import re
from collections.abc import Sequence

from reclaim.errors import SourceLocation
from reclaim.rules.expression.errors import ExpressionError
from reclaim.rules.expression.limits import Limits
from reclaim.rules.expression.nodes import Span

_NEWLINE = re.compile(r"\r\n|\r|\n")
_new_tuple = tuple.__new__


class SourceText:
    """One expression's text, where it starts in its file, and the limits it is held to."""

    def __init__(self, source: str, location: SourceLocation | None, limits: Limits) -> None:
        self.source = source
        self.location = location
        self.limits = limits
        # Python's tokenizer ends lines at \n, \r\n and \r only (str.splitlines() also splits
        # at \f, \u2028 and others, which would shift every later line number).
        # An oversized source is rejected on its length alone: never spend time splitting it.
        small = len(source) <= limits.max_source_chars
        self.lines = _NEWLINE.split(source) if small else [""]
        # Most conditions are one line of ASCII: there a node's columns are its offsets.
        self.one_ascii_line = small and len(self.lines) == 1 and source.isascii()

    # --- errors and positions ---

    def error(self, message: str, fix: str, line: int = 1, column: int = 1) -> ExpressionError:
        return ExpressionError(message, location=self.place(line, column), fix=fix)

    def place(self, line: int, column: int) -> SourceLocation:
        """Map a position in the expression (1-based) to the file, per the rules contract."""
        if self.location is None:
            return SourceLocation("<expression>", line, column)
        base_line = self.location.line or 1
        base_column = self.location.column or 1
        if line == 1:
            return SourceLocation(self.location.path, base_line, base_column + column - 1)
        return SourceLocation(self.location.path, base_line + line - 1, column)

    def error_at(self, node: ast.AST, message: str, fix: str) -> ExpressionError:
        line, column = self._position(node)
        return self.error(message, fix, line, column)

    # The parser reads the text as "(\n" + text + "\n)" (see parser.py): the tree's line
    # numbers are one ahead of the text's. Shifting here, not by walking the tree once more,
    # was a tenth of checking a large rule file.
    def _position(self, node: ast.AST) -> tuple[int, int]:
        line = (getattr(node, "lineno", 2) - 1) or 1
        offset = getattr(node, "col_offset", 0) or 0
        return line, self._char_column(line, offset)

    def _char_column(self, line: int, byte_offset: int) -> int:
        # ast offsets count UTF-8 bytes; editors count characters.
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return min(byte_offset, len(text)) + 1
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore")) + 1

    def span(self, node: ast.AST) -> Span:
        if self.one_ascii_line:
            start: int = node.col_offset  # type: ignore[attr-defined]
            stop: int = node.end_col_offset  # type: ignore[attr-defined]
            # Built as the tuple it is, without the named tuple's own Python-level __new__:
            # a checked tree holds a span per node.
            return _new_tuple(Span, (1, start + 1, 1, stop + 1, self.source[start:stop]))
        line, column = self._position(node)
        end = getattr(node, "end_lineno", None)
        end_line = (end - 1 if end else 0) or line
        end_column = self._char_column(end_line, getattr(node, "end_col_offset", 0) or 0)
        if line == end_line:
            text = self.lines[line - 1][column - 1 : end_column - 1]
        else:
            first = offset(self.lines, line, column)
            text = "\n".join(self.lines)[first : offset(self.lines, end_line, end_column)]
        return Span(line, column, end_line, end_column, text)


def offset(lines: Sequence[str], line: int, column: int) -> int:
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1
