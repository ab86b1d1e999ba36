"""Source text → checked tree. The only place user text is looked at.

Order of work, cheapest first, so hostile input is rejected before it can cost anything:
1. length of the source; 2. bracket depth of the raw text (CPython's parser recurses on nesting
and can exhaust the C stack or raise MemoryError before we see a tree); 3. ``ast.parse`` in
``eval`` mode (an expression, never statements), its own failures turned into ExpressionError;
4. node count and tree depth, walked iteratively; 5. the allow-list walk of checker.py, which
builds our own tree and checks names against the schema and types against each other; 6. the
size of what ``+`` can build from constants. The Python tree is dropped afterwards: nothing of it
is ever executed.
"""

from __future__ import annotations

__all__ = ["TreeSummary", "parse", "parse_summarized"]

import ast
import io
import itertools
import re
import tokenize
import unicodedata
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

from reclaim.errors import SourceLocation
from reclaim.rules.expression.checker import Checker, TooDeep
from reclaim.rules.expression.errors import ExpressionError
from reclaim.rules.expression.limits import Limits
from reclaim.rules.expression.nodes import BinOp, Call, Const, Field, IfElse, Node, children
from reclaim.rules.expression.source import SourceText
from reclaim.rules.expression.types import FactSchema

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")
# A string literal (a backslash escapes any character, newlines included; an unclosed one runs
# to the end), a comment (to the end of the line), or one bracket.
_BRACKETS_STRINGS_COMMENTS = re.compile(
    r"""'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|#[^\n]*|[()\[\]{}]""", re.DOTALL
)


def _line_and_column(source: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``source[index]``; lines end at newline characters only."""
    return source.count("\n", 0, index) + 1, index - source.rfind("\n", 0, index)


# Spellings people bring from JavaScript, C and SQL, and ours (checked longest first).
_FOREIGN_OPERATORS = (
    ("===", "=="),
    ("!==", "!="),
    ("&&", "and"),
    ("||", "or"),
    ("!", "not"),
    ("<>", "!="),
)
# Invisible characters that reorder how text is displayed: a string literal holding them can
# show one thing in a review and mean another ("Trojan Source", CVE-2021-42574).
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def parse(
    source: str,
    *,
    schema: FactSchema | None,
    constants: Mapping[str, Any] | None,
    location: SourceLocation | None,
    limits: Limits,
) -> Node:
    """Parse and check ``source``; raises ExpressionError pointing at the offending token."""
    return parse_summarized(
        source, schema=schema, constants=constants, location=location, limits=limits
    )[0]


class TreeSummary(NamedTuple):
    """What the evaluators and the per-file limits need to know of a checked tree, found in
    the one walk that checks concatenations (a walk per question was a fifth of loading)."""

    nodes: int
    """Syntax nodes of the checked tree."""
    constant_items: int
    """Characters and items of the constants it holds (strings, lists, maps)."""
    fields: frozenset[str]
    """Top-level fact fields it reads."""
    uses_now: bool
    """Whether it reads the evaluation time (``now()``, ``days_since``)."""


def parse_summarized(
    source: str,
    *,
    schema: FactSchema | None,
    constants: Mapping[str, Any] | None,
    location: SourceLocation | None,
    limits: Limits,
) -> tuple[Node, TreeSummary]:
    """:func:`parse`, and the tree's :class:`TreeSummary`."""
    if not isinstance(source, str):
        raise ExpressionError(
            f"an expression must be text, not {type(source).__name__}",
            location=location,
            fix="quote the expression in the rule file",
        )
    parser = _Parser(source, location, limits)
    tree = parser.check()
    checker = Checker(source, location, limits, schema, constants or {})
    if parser.sized:
        checked = checker.visit(tree.body)
        return checked, parser.check_concatenation(checked)
    # Too short to have too many nodes: only its depth is unknown, and the checker's own walk
    # tells it (the size walk was a tenth of loading). A tree the checker finds deep, or
    # refuses, is sized exactly first, so the error is the one the size walk gives.
    checker.max_visit_depth = limits.max_depth - _UNVISITED_DEPTH
    try:
        checked = checker.visit(tree.body)
    except TooDeep:
        _check_size_first(parser, tree)
        checked = Checker(source, location, limits, schema, constants or {}).visit(tree.body)
    except Exception:
        _check_size_first(parser, tree)
        raise
    return checked, parser.check_concatenation(checked)


def _check_size_first(parser: _Parser, tree: ast.Expression) -> None:
    """The size error of ``tree``, if any, raised as if it had been found before checking."""
    try:
        parser.check_size(tree)
    except ExpressionError as exc:
        raise exc from None


# Nodes Python's parser makes per character of source, at most: two ('~x', '*x,', a
# one-letter name and its context), three with a margin. A source this short cannot pass the
# node limit.
_NODES_PER_CHAR = 3
# Levels of Python's tree the checker does not visit below a node it visits: a name's context,
# or a call's function name and its context, or a negative index literal and its operator.
_UNVISITED_DEPTH = 2


def _constant_size(node: Node, sizes: dict[int, int]) -> int:
    """Characters (or items) of constants that ``node``'s value can carry, as far as ``+``
    joins them; fact values do not count (they are the data's own size). ``sizes`` holds
    the sizes of the nodes below that are not 0."""
    if isinstance(node, Const):
        return len(node.value) if isinstance(node.value, str | list | tuple) else 0
    if isinstance(node, BinOp) and node.op == "+":
        return sizes.get(id(node.left), 0) + sizes.get(id(node.right), 0)
    if isinstance(node, IfElse):
        return max(sizes.get(id(node.body), 0), sizes.get(id(node.orelse), 0))
    if isinstance(node, Call) and node.args:
        # coalesce, min, max, lower, upper pass (one of) their arguments through.
        return max(sizes.get(id(arg), 0) for arg in node.args)
    return 0


class _Parser(SourceText):
    sized = False
    """Whether check() has walked the tree to count its nodes and depth."""

    # --- the stages ---

    def check(self) -> ast.Expression:
        limits = self.limits
        if len(self.source) > limits.max_source_chars:
            raise self.error(
                f"expression is {len(self.source)} characters long; the limit is "
                f"{limits.max_source_chars}",
                "split the condition into several rules, or raise Limits.max_source_chars",
            )
        if not self.source.strip():
            raise self.error("expression is empty", "write a condition such as: cpu_avg < 10")
        self._check_bidi_controls()
        self._check_bracket_depth()
        try:
            # Wrapped in brackets on lines of their own, so a condition may span lines (YAML
            # block scalars) while every line keeps its columns; SourceText shifts lines back.
            with warnings.catch_warnings():
                # '\w' in a string literal is an "invalid escape sequence" warning (an error
                # under -W error) that keeps the backslash: exactly what a regex wants.
                warnings.simplefilter("ignore")
                tree = ast.parse("(\n" + self.source + "\n)", mode="eval")
        except SyntaxError as exc:
            self._check_foreign_operators()
            line = min(max((exc.lineno or 2) - 1, 1), len(self.lines))
            column = exc.offset or 1
            if (exc.lineno or 2) - 1 > len(self.lines):
                column = len(self.lines[-1]) + 1
            raise self.error(
                f"syntax error: {exc.msg}", "check the expression's syntax", line, column
            ) from None
        except (RecursionError, MemoryError):
            raise self.error(
                "expression is nested too deeply to parse",
                "simplify the expression or split it into several rules",
            ) from None
        except ValueError as exc:  # e.g. NUL bytes in the source
            raise self.error(
                f"invalid expression text: {exc}", "remove control characters"
            ) from None
        if _NODES_PER_CHAR * len(self.source) + 1 > limits.max_nodes:
            self.check_size(tree)
        return tree

    def _check_foreign_operators(self) -> None:
        """After a syntax error: point at operators from other languages, with ours."""
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(self.source).readline))
        except (tokenize.TokenError, SyntaxError):
            return
        for token, following in itertools.pairwise(tokens):
            adjacent = following.start == token.end
            pair = token.string + following.string if adjacent else token.string
            for spelling, ours in _FOREIGN_OPERATORS:
                if pair.startswith(spelling) or (spelling == "!" and token.string == "!"):
                    if spelling == "!" and pair.startswith("!="):
                        continue
                    line, column = token.start
                    raise self.error(
                        f"{spelling!r} is not an operator of this language",
                        f"write {ours!r} instead",
                        line,
                        column + 1,
                    )

    def _check_bidi_controls(self) -> None:
        found = _BIDI_CONTROLS.search(self.source)
        if found is None:
            return
        char = found.group()
        code = f"\\u{ord(char):04x}"
        before = self.source[: found.start()]
        line = before.count("\n") + 1
        column = found.start() - (before.rfind("\n") + 1) + 1
        raise self.error(
            f"expression contains the invisible bidirectional control character "
            f"U+{ord(char):04X} ({unicodedata.name(char, 'bidi control')}), which makes text "
            "display in another order than it is read",
            f"remove it; to match it in the data, write the escape '{code}' inside the quotes",
            line,
            column,
        )

    def _check_bracket_depth(self) -> None:
        # Brackets outside string literals and comments, found by one regular expression
        # rather than a Python loop over every character (a tenth of checking).
        source = self.source
        depth = 0
        limit = self.limits.max_depth
        for found in _BRACKETS_STRINGS_COMMENTS.finditer(source):
            char = found.group()
            if char in _OPENERS:
                depth += 1
                if depth > limit:
                    line, column = _line_and_column(source, found.start())
                    raise self.error(
                        f"expression nests brackets more than {limit} deep",
                        "simplify the expression or split it into several rules",
                        line,
                        column,
                    )
            elif char in _CLOSERS:
                depth -= 1
                if depth < 0:
                    line, column = _line_and_column(source, found.start())
                    raise self.error(
                        f"unmatched {char!r}", "remove it or add the opening bracket", line, column
                    )

    def check_concatenation(self, tree: Node) -> TreeSummary:
        """Refuse ``+`` chains whose constants alone exceed the string limit, and summarize
        the tree on the way.

        Each constant is within ``max_string_len``, but ``s + s + … + s`` over a 100,000
        character ``vars`` string would build megabytes on every evaluation of every fact.
        """
        limit = max(self.limits.max_string_len, self.limits.max_list_len)
        sizes: dict[int, int] = {}
        order: list[Node] = []
        stack = [tree]
        pop, push, extend = stack.pop, order.append, stack.extend
        items = 0
        fields: set[str] = set()
        uses_now = False
        joins = False
        while stack:
            node = pop()
            push(node)
            kind = type(node)
            if kind is Const:
                value = node.value  # type: ignore[attr-defined]
                if isinstance(value, str | list | tuple | Mapping):
                    items += len(value)
                continue
            if kind is Field:
                fields.add(node.name)  # type: ignore[attr-defined]
                continue
            if kind is Call and node.name in _NOW_FUNCTIONS:  # type: ignore[attr-defined]
                uses_now = True
            elif kind is BinOp and node.op == "+":  # type: ignore[attr-defined]
                joins = True
            extend(children(node))
        summary = TreeSummary(len(order), items, frozenset(fields), uses_now)
        if not joins:
            # Only a '+' can join constants past the limit: most conditions have none, and
            # sizing every node of theirs was a tenth of checking them.
            return summary
        for node in reversed(order):
            size = _constant_size(node, sizes)
            if size:
                sizes[id(node)] = size
            if size > limit and isinstance(node, BinOp):
                span = node.span
                raise self.error(
                    f"'+' here joins constants of {size:,} characters or items in all, on "
                    f"every evaluation; the limit is {limit:,}",
                    "use each constant on its own (e.g. 'x in a or x in b'), or shorten them",
                    span.line,
                    span.column,
                )
        return summary

    def check_size(self, tree: ast.AST) -> None:
        """Refuse a tree of more nodes, or more levels, than the limits allow."""
        self.sized = True
        if _within_size(tree, self.limits.max_nodes, self.limits.max_depth):
            return
        # Over a limit: walk as ast.iter_child_nodes orders the nodes, so the error and the
        # node it blames are always the same ones.
        max_nodes, max_depth = self.limits.max_nodes, self.limits.max_depth
        fields_of = _AST_FIELDS
        count = 0
        stack: list[tuple[ast.AST, int]] = [(tree, 0)]
        pop, push = stack.pop, stack.append
        while stack:
            node, depth = pop()
            count += 1
            if count > max_nodes:
                raise self.error(
                    f"expression has more than {max_nodes} syntax nodes",
                    "split the condition into several rules",
                )
            if depth > max_depth:
                raise self.error_at(
                    node,
                    f"expression nests more than {max_depth} levels deep",
                    "simplify the expression or split it into several rules",
                )
            names = fields_of.get(type(node))
            if names is None:
                names = fields_of[type(node)] = type(node)._fields
            depth += 1
            for name in names:
                value = getattr(node, name, None)
                if type(value) is list:
                    for item in value:
                        if isinstance(item, ast.AST):
                            push((item, depth))
                elif isinstance(value, ast.AST):
                    push((value, depth))


_AST_FIELDS: dict[type[ast.AST], tuple[str, ...]] = {}
# Per node class: its fields that may hold nodes with children, and how many of its fields
# hold a context or an operator (childless nodes, counted without being visited).
_SHAPES: dict[type[ast.AST], tuple[tuple[str, ...], int]] = {}
_LEAF_FIELDS = frozenset({"ctx", "op"})


def _shape(kind: type[ast.AST]) -> tuple[tuple[str, ...], int]:
    names = kind._fields
    return tuple(name for name in names if name not in _LEAF_FIELDS), sum(
        name in _LEAF_FIELDS for name in names
    )


def _within_size(tree: ast.AST, max_nodes: int, max_depth: int) -> bool:
    """Whether ``tree`` has at most ``max_nodes`` nodes, none deeper than ``max_depth``,
    counted as the exact walk counts them (contexts and operators are nodes), in any order.

    Never wrong the other way: a count that could be too low is not possible here, since
    every context and operator field counts one node whether it is set or not.
    """
    shapes = _SHAPES
    count = 0
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        shape = shapes.get(type(node))
        if shape is None:
            shape = shapes[type(node)] = _shape(type(node))
        names, leaves = shape
        count += 1
        if depth > deepest:
            deepest = depth
        depth += 1
        if leaves:
            count += leaves
            if depth > deepest:
                deepest = depth
        for name in names:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        if not item._fields:
                            # An operator of a comparison's list (or another childless node).
                            count += 1
                            if depth > deepest:
                                deepest = depth
                        else:
                            push((item, depth))
            elif isinstance(value, ast.AST):
                push((value, depth))
        if count > max_nodes or deepest > max_depth:
            return False
    return True


_NOW_FUNCTIONS = frozenset({"now", "days_since"})
