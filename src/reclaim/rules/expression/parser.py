"""Source text → checked tree. The only place user text is looked at.

Order of work, cheapest first, so hostile input is rejected before it can cost anything:
1. length of the source; 2. bracket depth of the raw text (CPython's parser recurses on nesting
and can exhaust the C stack or raise MemoryError before we see a tree); 3. ``ast.parse`` in
``eval`` mode (an expression, never statements), its own failures turned into ExpressionError;
4. node count and tree depth, walked iteratively; 5. the allow-list walk below, which builds our
own tree and checks names against the schema and types against each other. The Python tree is
dropped afterwards: nothing of it is ever executed.
"""

from __future__ import annotations

__all__ = ["parse"]

import ast
import difflib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from reclaim.errors import SourceLocation
from reclaim.rules.expression.errors import ExpressionError
from reclaim.rules.expression.functions import FUNCTIONS, compile_regex
from reclaim.rules.expression.limits import Limits
from reclaim.rules.expression.nodes import (
    BinOp,
    BoolOp,
    Call,
    Compare,
    Const,
    Field,
    IfElse,
    ListLit,
    Member,
    Node,
    Span,
    UnaryOp,
)
from reclaim.rules.expression.types import NUMERIC, FactSchema, FieldSpec, FieldType

T = FieldType

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_ORDERING = frozenset({"<", "<=", ">", ">="})

# Constructs Python has and we refuse, with the reason shown to the user.
_REJECTED: dict[type[ast.AST], tuple[str, str]] = {
    ast.Lambda: ("lambdas are not allowed", "use the built-in functions"),
    ast.ListComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.SetComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.DictComp: ("comprehensions are not allowed", "write the condition without a loop"),
    ast.GeneratorExp: ("generator expressions are not allowed", "write it without a loop"),
    ast.JoinedStr: ("f-strings are not allowed", "compare fields directly"),
    ast.FormattedValue: ("f-strings are not allowed", "compare fields directly"),
    ast.NamedExpr: ("assignment (:=) is not allowed", "expressions cannot assign"),
    ast.Starred: ("unpacking (*) is not allowed", "pass arguments one by one"),
    ast.Await: ("await is not allowed", "expressions cannot await"),
    ast.Yield: ("yield is not allowed", "expressions cannot yield"),
    ast.YieldFrom: ("yield is not allowed", "expressions cannot yield"),
    ast.Slice: ("slices are not supported", "index with one key or position"),
    ast.Dict: ("map literals are not supported", "compare map keys one at a time"),
    ast.Set: ("set literals are not supported", "use a list: x in ['a', 'b']"),
}

_OPENERS = {"(": ")", "[": "]", "{": "}"}


def parse(
    source: str,
    *,
    schema: FactSchema | None,
    constants: Mapping[str, Any] | None,
    location: SourceLocation | None,
    limits: Limits,
) -> Node:
    """Parse and check ``source``; raises ExpressionError pointing at the offending token."""
    if not isinstance(source, str):
        raise ExpressionError(
            f"an expression must be text, not {type(source).__name__}",
            location=location,
            fix="quote the expression in the rule file",
        )
    checker = _Checker(source, schema, constants or {}, location, limits)
    return checker.check()


class _Checker:
    def __init__(
        self,
        source: str,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
        location: SourceLocation | None,
        limits: Limits,
    ) -> None:
        self.source = source
        self.schema = schema
        self.constants = constants
        self.location = location
        self.limits = limits
        self.lines = source.splitlines() or [""]

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

    def _position(self, node: ast.AST) -> tuple[int, int]:
        line = getattr(node, "lineno", 1) or 1
        offset = getattr(node, "col_offset", 0) or 0
        return line, self._char_column(line, offset)

    def _char_column(self, line: int, byte_offset: int) -> int:
        # ast offsets count UTF-8 bytes; editors count characters.
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore")) + 1

    def span(self, node: ast.AST) -> Span:
        line, column = self._position(node)
        end_line = getattr(node, "end_lineno", line) or line
        end_column = self._char_column(end_line, getattr(node, "end_col_offset", 0) or 0)
        text = ast.get_source_segment(self.source, node) or ""
        return Span(line, column, end_line, end_column, text)

    # --- the stages ---

    def check(self) -> Node:
        limits = self.limits
        if len(self.source) > limits.max_source_chars:
            raise self.error(
                f"expression is {len(self.source)} characters long; the limit is "
                f"{limits.max_source_chars}",
                "split the condition into several rules, or raise Limits.max_source_chars",
            )
        if not self.source.strip():
            raise self.error("expression is empty", "write a condition such as: cpu_avg < 10")
        self._check_bracket_depth()
        try:
            # Wrapped in brackets on lines of their own, so a condition may span lines (YAML
            # block scalars) while every line keeps its columns; lines are shifted back below.
            tree = ast.parse("(\n" + self.source + "\n)", mode="eval")
        except SyntaxError as exc:
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
        ast.increment_lineno(tree, -1)
        self._check_size(tree)
        return self.visit(tree.body)

    def _check_bracket_depth(self) -> None:
        depth = 0
        line, column = 1, 0
        quote: str | None = None
        escaped = False
        comment = False
        for char in self.source:
            column += 1
            if char == "\n":
                line, column = line + 1, 0
                comment = False
            if comment:
                continue
            if quote is not None:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == quote:
                    quote = None
                continue
            if char in "'\"":
                quote = char
            elif char == "#":
                comment = True
            elif char in _OPENERS:
                depth += 1
                if depth > self.limits.max_depth:
                    raise self.error(
                        f"expression nests brackets more than {self.limits.max_depth} deep",
                        "simplify the expression or split it into several rules",
                        line,
                        column,
                    )
            elif char in ")]}":
                depth -= 1
                if depth < 0:
                    raise self.error(
                        f"unmatched {char!r}", "remove it or add the opening bracket", line, column
                    )

    def _check_size(self, tree: ast.AST) -> None:
        count = 0
        stack: list[tuple[ast.AST, int]] = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > self.limits.max_nodes:
                raise self.error(
                    f"expression has more than {self.limits.max_nodes} syntax nodes",
                    "split the condition into several rules",
                )
            if depth > self.limits.max_depth:
                raise self.error_at(
                    node,
                    f"expression nests more than {self.limits.max_depth} levels deep",
                    "simplify the expression or split it into several rules",
                )
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    # --- the allow-list walk ---

    def visit(self, node: ast.AST) -> Node:
        rejected = _REJECTED.get(type(node))
        if rejected is not None:
            raise self.error_at(node, rejected[0], rejected[1])
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.error_at(
                node,
                f"{type(node).__name__} is not supported in expressions",
                "see docs/expressions.md for the grammar",
            )
        result: Node = method(node)
        return result

    def visit_Constant(self, node: ast.Constant) -> Node:
        return self.constant(node, node.value, self.span(node))

    def constant(self, node: ast.AST, value: Any, span: Span) -> Const:
        """A literal or ``vars`` constant, checked against the size limits."""
        return Const(span, self.value_type(node, value, 0), value)

    def value_type(self, node: ast.AST, value: Any, depth: int) -> FieldType:
        limits = self.limits
        if depth > limits.max_depth:
            raise self.error_at(node, "constant is nested too deeply", "flatten the constant")
        if value is None:
            return T.ANY
        if isinstance(value, bool):
            return T.BOOLEAN
        if isinstance(value, int):
            if value.bit_length() > limits.max_int_digits * 3.33:
                raise self.error_at(
                    node,
                    f"integer has more than {limits.max_int_digits} digits",
                    "use a smaller number",
                )
            return T.INTEGER
        if isinstance(value, float):
            return T.NUMBER
        if isinstance(value, str):
            if len(value) > limits.max_string_len:
                raise self.error_at(
                    node,
                    f"string is {len(value)} characters long; the limit is {limits.max_string_len}",
                    "use a shorter string",
                )
            return T.STRING
        if isinstance(value, datetime | date):
            return T.DATETIME
        if isinstance(value, list | tuple):
            if len(value) > limits.max_list_len:
                raise self.error_at(
                    node,
                    f"list has {len(value)} items; the limit is {limits.max_list_len}",
                    "use a shorter list",
                )
            for item in value:
                self.value_type(node, item, depth + 1)
            return T.LIST
        if isinstance(value, Mapping):
            if len(value) > limits.max_list_len:
                raise self.error_at(node, "map constant is too large", "use a smaller map")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise self.error_at(node, "map constant keys must be strings", "quote the keys")
                self.value_type(node, item, depth + 1)
            return T.MAP
        kind = type(value).__name__
        raise self.error_at(
            node, f"{kind} values are not supported", "use numbers, strings or lists"
        )

    def visit_Name(self, node: ast.Name) -> Node:
        name = node.id
        span = self.span(node)
        if "__" in name:
            raise self.error_at(
                node, f"name {name!r} is not allowed (double underscore)", _NO_DUNDER
            )
        if name in self.constants:
            return self.constant(node, self.constants[name], span)
        if self.schema is None:
            return Field(span, T.ANY, name)
        spec = self.schema.get(name)
        if spec is not None:
            return Field(span, spec.type, name)
        if name in FUNCTIONS:
            raise self.error_at(
                node, f"{name!r} is a function", f"call it: {FUNCTIONS[name].signature}"
            )
        candidates = list(self.schema) + list(self.constants)
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else "declare it in the fact schema or in vars; known fields: "
            + ", ".join(sorted(self.schema)[:20])
        )
        raise self.error_at(node, f"unknown field {name!r}", fix)

    def visit_Attribute(self, node: ast.Attribute) -> Node:
        if "__" in node.attr or node.attr.startswith("_"):
            raise self.error_at(
                node, f"attribute {node.attr!r} is not allowed (leading underscore)", _NO_DUNDER
            )
        obj = self.visit(node.value)
        return self.member(node, obj, node.attr)

    def visit_Subscript(self, node: ast.Subscript) -> Node:
        key_node = node.slice
        if isinstance(key_node, ast.Slice):
            raise self.error_at(key_node, *_REJECTED[ast.Slice])
        key = self.literal_key(key_node)
        obj = self.visit(node.value)
        return self.member(node, obj, key)

    def literal_key(self, node: ast.AST) -> str | int:
        value: Any = None
        if isinstance(node, ast.Constant):
            value = node.value
        elif (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
        ):
            value = -node.operand.value if type(node.operand.value) is int else None
        if isinstance(value, str) or (type(value) is int and abs(value) < 2**31):
            if isinstance(value, str) and "__" in value:
                raise self.error_at(
                    node, f"key {value!r} is not allowed (double underscore)", _NO_DUNDER
                )
            return value
        raise self.error_at(
            node,
            "an index must be a string or integer literal",
            "write tags['owner'] or items[0]",
        )

    def member(self, node: ast.AST, obj: Node, key: str | int) -> Node:
        span = self.span(node)
        if isinstance(obj, Const):
            value = obj.value
            if isinstance(value, Mapping) and isinstance(key, str):
                return self.constant(node, value.get(key), span)
            if isinstance(value, list | tuple) and isinstance(key, int):
                inside = -len(value) <= key < len(value)
                return self.constant(node, value[key] if inside else None, span)
            raise self.error_at(node, f"cannot look up {key!r} in this constant", "check the vars")
        if obj.type is T.MAP:
            nested = self.nested_schema(obj)
            if nested is None or not isinstance(key, str):
                if not isinstance(key, str):
                    raise self.error_at(
                        node, "a map is indexed by a string key", "write tags['owner']"
                    )
                return Member(span, T.ANY, obj, key)
            spec = nested.get(key)
            if spec is None:
                close = nested.suggest(key)
                fix = f"did you mean {close!r}?" if close else "declare the key in the schema"
                raise self.error_at(node, f"unknown key {key!r} in {obj.span.text!r}", fix)
            return Member(span, spec.type, obj, key)
        if obj.type is T.LIST:
            if not isinstance(key, int):
                raise self.error_at(node, "a list is indexed by an integer", "write items[0]")
            return Member(span, T.ANY, obj, key)
        if obj.type is T.ANY:
            return Member(span, T.ANY, obj, key)
        if isinstance(node, ast.Attribute):
            fix = (
                f"call the function instead: {key}({obj.span.text})"
                if key in FUNCTIONS
                else "only maps have keys; methods are not supported"
            )
            raise self.error_at(node, f"{obj.type} has no attribute {key!r}", fix)
        raise self.error_at(
            node, f"cannot index a {obj.type}", "only maps and lists can be indexed"
        )

    def nested_schema(self, obj: Node) -> FactSchema | None:
        """The declared keys of a map-typed node, if the schema declares them."""
        if self.schema is None:
            return None
        path: list[str] = []
        current: Node = obj
        while isinstance(current, Member):
            if not isinstance(current.key, str):
                return None
            path.append(current.key)
            current = current.obj
        if not isinstance(current, Field):
            return None
        spec: FieldSpec | None = self.schema.get(current.name)
        for key in reversed(path):
            if spec is None or spec.schema is None:
                return None
            spec = spec.schema.get(key)
        return spec.schema if spec is not None else None

    def visit_List(self, node: ast.List) -> Node:
        return self.sequence(node, node.elts)

    def visit_Tuple(self, node: ast.Tuple) -> Node:
        return self.sequence(node, node.elts)

    def sequence(self, node: ast.AST, elements: Sequence[ast.expr]) -> Node:
        if len(elements) > self.limits.max_list_len:
            raise self.error_at(node, "list literal is too long", "use a shorter list")
        items = [self.visit(element) for element in elements]
        span = self.span(node)
        if all(isinstance(item, Const) for item in items):
            return self.constant(
                node, [item.value for item in items if isinstance(item, Const)], span
            )
        for item in items:
            if item.type in (T.LIST, T.MAP):
                raise self.error_at(
                    node, "lists of lists or maps are not supported", "flatten the list"
                )
        return ListLit(span, T.LIST, tuple(items))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.visit(node.operand)
        span = self.span(node)
        if isinstance(node.op, ast.Not):
            self.condition(node.operand, operand)
            return UnaryOp(span, T.BOOLEAN, "not", operand)
        if isinstance(node.op, ast.Invert):
            raise self.error_at(node, "the ~ operator is not supported", "use not for negation")
        op = "-" if isinstance(node.op, ast.USub) else "+"
        self.require(node.operand, operand, NUMERIC, f"unary {op}")
        if isinstance(operand, Const) and type(operand.value) in (int, float):
            return self.constant(node, -operand.value if op == "-" else operand.value, span)
        return UnaryOp(span, operand.type, op, operand)

    def visit_BinOp(self, node: ast.BinOp) -> Node:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.error_at(
                node,
                f"operator {_op_text(node.op)} is not supported",
                "use + - * / // % ** on numbers",
            )
        left = self.visit(node.left)
        right = self.visit(node.right)
        span = self.span(node)
        if op == "%" and left.type is T.STRING:
            raise self.error_at(
                node, "format strings ('...' % x) are not allowed", "compare fields"
            )
        if op == "**":
            return self.power(node, left, right, span)
        if op == "+" and T.STRING in (left.type, right.type):
            if {left.type, right.type} <= {T.STRING, T.ANY}:
                return BinOp(span, T.STRING, op, left, right)
            raise self.mismatch(node, op, left, right)
        if op == "*":
            for side, operand in ((node.left, left), (node.right, right)):
                if operand.type in (T.STRING, T.LIST):
                    raise self.error_at(
                        side,
                        f"repeating a {operand.type} with * is not allowed",
                        "* works on numbers only",
                    )
        for side, operand in ((node.left, left), (node.right, right)):
            if operand.type not in NUMERIC | {T.ANY}:
                raise self.mismatch(node, op, left, right)
            self.not_null_literal(side, operand, op)
        if op == "/":
            result = T.NUMBER
        elif left.type is T.INTEGER and right.type is T.INTEGER:
            result = T.INTEGER
        elif T.ANY in (left.type, right.type):
            result = T.NUMBER if op != "+" else T.ANY
        else:
            result = T.NUMBER
        return BinOp(span, result, op, left, right)

    def power(self, node: ast.BinOp, left: Node, right: Node, span: Span) -> Node:
        limit = self.limits.max_power
        if not (isinstance(right, Const) and type(right.value) is int):
            raise self.error_at(
                node.right,
                "the exponent of ** must be an integer literal",
                f"write a whole number between -{limit} and {limit}",
            )
        if abs(right.value) > limit:
            raise self.error_at(
                node.right,
                f"exponent {right.value} is larger than {limit}",
                f"use an exponent between -{limit} and {limit}",
            )
        self.require(node.left, left, NUMERIC, "**")
        self.not_null_literal(node.left, left, "**")
        return BinOp(span, T.NUMBER, "**", left, right)

    def visit_BoolOp(self, node: ast.BoolOp) -> Node:
        operands = tuple(self.visit(value) for value in node.values)
        for value, operand in zip(node.values, operands, strict=True):
            self.condition(value, operand)
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(self.span(node), T.BOOLEAN, op, operands)

    def visit_Compare(self, node: ast.Compare) -> Node:
        operands = [node.left, *node.comparators]
        checked = [self.visit(operand) for operand in operands]
        parts: list[Node] = []
        for index, op_node in enumerate(node.ops):
            op = _CMPOPS[type(op_node)]
            left_ast, right_ast = operands[index], operands[index + 1]
            left, right = checked[index], checked[index + 1]
            single = len(node.ops) == 1
            span = self.span(node) if single else self.pair_span(left_ast, right_ast)
            parts.append(self.compare(node, op, left_ast, right_ast, left, right, span))
        if len(parts) == 1:
            return parts[0]
        return BoolOp(self.span(node), T.BOOLEAN, "and", tuple(parts))

    def pair_span(self, left: ast.AST, right: ast.AST) -> Span:
        start = self.span(left)
        end = self.span(right)
        first = _offset(self.lines, start.line, start.column)
        last = _offset(self.lines, end.end_line, end.end_column)
        text = "\n".join(self.lines)[first:last]
        return Span(start.line, start.column, end.end_line, end.end_column, text)

    def compare(
        self,
        node: ast.Compare,
        op: str,
        left_ast: ast.AST,
        right_ast: ast.AST,
        left: Node,
        right: Node,
        span: Span,
    ) -> Node:
        if op in ("is", "is not"):
            if not _is_none(right):
                raise self.error_at(
                    right_ast,
                    f"'{op}' only compares with None",
                    "use == and != to compare values; write x is None to test for null",
                )
            return Compare(span, T.BOOLEAN, op, left, right)
        for side, operand in ((left_ast, left), (right_ast, right)):
            if _is_none(operand):
                negated = "not " if op in ("!=", "not in") else ""
                other = right if operand is left else left
                raise self.error_at(
                    side,
                    f"comparing with None using {op!r} is always null",
                    f"write {other.span.text or 'x'} is {negated}None",
                )
        if op in ("in", "not in"):
            return self.membership(node, op, left_ast, right_ast, left, right, span)
        if op in _ORDERING:
            allowed = NUMERIC | {T.STRING, T.DATETIME, T.ANY}
            for operand in (left, right):
                if operand.type not in allowed:
                    raise self.error_at(
                        node,
                        f"cannot order {operand.type} values with {op!r}",
                        "compare numbers, strings or datetimes",
                    )
        if not _comparable(left.type, right.type):
            raise self.mismatch(node, op, left, right)
        return Compare(span, T.BOOLEAN, op, left, right)

    def membership(
        self,
        node: ast.Compare,
        op: str,
        left_ast: ast.AST,
        right_ast: ast.AST,
        left: Node,
        right: Node,
        span: Span,
    ) -> Node:
        if right.type is T.STRING:
            if left.type not in (T.STRING, T.ANY):
                raise self.mismatch(node, op, left, right)
        elif right.type is T.LIST:
            if left.type in (T.LIST, T.MAP):
                raise self.error_at(left_ast, f"cannot test a {left.type} for membership", _IN_FIX)
            element = _element_type(right)
            if element is not None and not _comparable(left.type, element):
                raise self.error_at(
                    node,
                    f"{left.span.text!r} is {left.type} but the list holds {element} values",
                    "compare values of the same type",
                )
        elif right.type is not T.ANY:
            raise self.error_at(
                right_ast, f"'{op}' needs a list or a string, not {right.type}", _IN_FIX
            )
        return Compare(span, T.BOOLEAN, op, left, right)

    def visit_IfExp(self, node: ast.IfExp) -> Node:
        test = self.visit(node.test)
        self.condition(node.test, test)
        body = self.visit(node.body)
        orelse = self.visit(node.orelse)
        result = _unify_branches(body, orelse)
        if result is None:
            raise self.error_at(
                node,
                f"the branches of if/else have different types ({body.type} and {orelse.type})",
                "make both branches the same type",
            )
        return IfElse(self.span(node), result, test, body, orelse)

    def visit_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                if node.func.attr in ("format", "format_map"):
                    raise self.error_at(
                        node, "format strings are not allowed", "compare fields directly"
                    )
                if "_" in node.func.attr[:1]:
                    raise self.error_at(node, "attribute access is not allowed", _NO_DUNDER)
                fix = (
                    f"write {node.func.attr}(x) instead of x.{node.func.attr}()"
                    if node.func.attr in FUNCTIONS
                    else "methods are not supported; use the functions in docs/expressions.md"
                )
                raise self.error_at(node, f"method call .{node.func.attr}() is not allowed", fix)
            raise self.error_at(node, "only the built-in functions can be called", _FUNCTION_FIX)
        name = node.func.id
        if "__" in name:
            raise self.error_at(
                node.func, f"name {name!r} is not allowed (double underscore)", _NO_DUNDER
            )
        for arg_node in node.args:
            if isinstance(arg_node, ast.Starred):
                raise self.error_at(arg_node, *_REJECTED[ast.Starred])
        spec = FUNCTIONS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
            fix = f"did you mean {close[0]!r}?" if close else _FUNCTION_FIX
            raise self.error_at(node.func, f"unknown function {name!r}", fix)
        if node.keywords:
            raise self.error_at(
                node.keywords[0], "keyword arguments are not supported", spec.signature
            )
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.error_at(node, f"wrong number of arguments to {name}()", spec.signature)
        args = tuple(self.visit(arg) for arg in node.args)
        for position, (arg_ast, arg) in enumerate(zip(node.args, args, strict=True)):
            allowed = spec.params[min(position, len(spec.params) - 1)]
            literal = isinstance(arg, Const) and arg.type in allowed
            if position in spec.literal_args and not literal:
                raise self.error_at(
                    arg_ast,
                    f"argument {position + 1} of {name}() must be a literal",
                    spec.signature,
                )
            if arg.type not in allowed and not (_is_none(arg) and name == "coalesce"):
                raise self.error_at(
                    arg_ast,
                    f"{name}() cannot take {arg.type} {arg.span.text!r}",
                    spec.signature,
                )
        if name == "matches":
            self.regex(node.args[1], args[1])
        if name == "round" and len(args) > 1:
            digits = args[1]
            assert isinstance(digits, Const)
            if not 0 <= digits.value <= 15:
                raise self.error_at(node.args[1], "round() digits must be 0 to 15", spec.signature)
        result: FieldType | None = spec.returns
        if spec.same_type_result:
            result = _unify_all([arg.type for arg in args if not _is_none(arg)])
            if result is None:
                raise self.error_at(
                    node, f"arguments of {name}() have different types", spec.signature
                )
        assert result is not None
        return Call(self.span(node), result, name, args)

    def regex(self, node: ast.AST, pattern: Node) -> None:
        assert isinstance(pattern, Const)
        try:
            compile_regex(pattern.value)
        except Exception as exc:  # re2 raises its own error type; any failure means invalid
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", errors="replace")
            raise self.error_at(
                node,
                f"invalid RE2 regular expression: {reason}",
                "RE2 has no backreferences or lookaround; see "
                "https://github.com/google/re2/wiki/Syntax",
            ) from None

    # --- type helpers ---

    def condition(self, node: ast.AST, operand: Node) -> None:
        if operand.type is T.MAP:
            raise self.error_at(
                node,
                f"a map ({operand.span.text!r}) is not a condition",
                "test a key instead, e.g. tags.owner is not None",
            )

    def require(self, node: ast.AST, operand: Node, allowed: frozenset[FieldType], op: str) -> None:
        if operand.type not in allowed | {T.ANY}:
            raise self.error_at(
                node,
                f"{op} needs a number, but {operand.span.text!r} is {operand.type}",
                "use a number",
            )

    def not_null_literal(self, node: ast.AST, operand: Node, op: str) -> None:
        if _is_none(operand):
            raise self.error_at(node, f"None in arithmetic ({op}) is always null", _COALESCE_FIX)

    def mismatch(self, node: ast.AST, op: str, left: Node, right: Node) -> ExpressionError:
        return self.error_at(
            node,
            f"type mismatch: {left.span.text!r} is {left.type} and {right.span.text!r} is "
            f"{right.type}; {op!r} needs matching types",
            "compare values of the same type (quote strings, leave numbers bare)",
        )


_NO_DUNDER = "expressions read fact fields only; host objects and their attributes are off-limits"
_FUNCTION_FIX = "available functions: " + ", ".join(FUNCTIONS)
_IN_FIX = "write x in ['a', 'b'], x in list_field or 'part' in text"
_COALESCE_FIX = "use coalesce(x, default) to replace a null"


def _is_none(node: Node) -> bool:
    return isinstance(node, Const) and node.value is None


def _comparable(left: FieldType, right: FieldType) -> bool:
    if T.ANY in (left, right) or left == right:
        return True
    return left in NUMERIC and right in NUMERIC


def _element_type(node: Node) -> FieldType | None:
    """The one type of a constant list's items, if they share one (nulls ignored)."""
    if isinstance(node, Const) and isinstance(node.value, list | tuple):
        types = {_python_type(item) for item in node.value if item is not None}
        return _unify_all(list(types)) if types else None
    if isinstance(node, ListLit):
        return _unify_all([item.type for item in node.items if not _is_none(item)])
    return None


def _python_type(value: Any) -> FieldType:
    if isinstance(value, bool):
        return T.BOOLEAN
    if isinstance(value, int):
        return T.INTEGER
    if isinstance(value, float):
        return T.NUMBER
    if isinstance(value, str):
        return T.STRING
    if isinstance(value, datetime | date):
        return T.DATETIME
    return T.ANY


def _unify_all(types: Sequence[FieldType]) -> FieldType | None:
    if not types:
        return T.ANY
    result: FieldType | None = types[0]
    for other in types[1:]:
        if result is None:
            return None
        result = _unify(result, other)
    return result


def _unify(left: FieldType, right: FieldType) -> FieldType | None:
    if left == right:
        return left
    if T.ANY in (left, right):
        return T.ANY
    if left in NUMERIC and right in NUMERIC:
        return T.NUMBER
    return None


def _unify_branches(body: Node, orelse: Node) -> FieldType | None:
    if _is_none(body):
        return orelse.type
    if _is_none(orelse):
        return body.type
    return _unify(body.type, orelse.type)


def _offset(lines: Sequence[str], line: int, column: int) -> int:
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def _op_text(op: ast.operator) -> str:
    return {
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.MatMult: "@",
    }.get(type(op), type(op).__name__)
