"""The allow-list walk: Python's syntax tree → our checked tree, with names and types checked.

Only the node kinds with a ``visit_`` method below are accepted; every other construct is
rejected with a reason (``REJECTED``) or a generic "not supported".
"""

from __future__ import annotations

__all__ = ["Checker", "TooDeep"]

import ast
import difflib
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from reclaim.errors import SourceLocation
from reclaim.rules.expression.errors import ExpressionError
from reclaim.rules.expression.functions import FUNCTIONS
from reclaim.rules.expression.grammar import BINOPS, CMPOPS, ORDERING, REJECTED, operator_text
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
    element_type,
    is_null_literal,
    unify_branches,
)
from reclaim.rules.expression.regex import check_polars_regex, compile_regex
from reclaim.rules.expression.runtime import INT64_MAX, INT64_MIN
from reclaim.rules.expression.source import SourceText, offset
from reclaim.rules.expression.types import (
    NUMERIC,
    FactSchema,
    FieldSpec,
    FieldType,
    comparable,
    unify_all,
)

T = FieldType


class TooDeep(Exception):
    """The walk went deeper than ``Checker.max_visit_depth``: a signal to the parser, never
    shown to a user."""


class Checker(SourceText):
    """Checks one expression's Python syntax tree and builds the checked tree."""

    max_visit_depth = sys.maxsize
    """Deepest level visited before TooDeep is raised (the body of the tree is level 1)."""
    depth = 0

    def __init__(
        self,
        source: str,
        location: SourceLocation | None,
        limits: Limits,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
    ) -> None:
        super().__init__(source, location, limits)
        self.schema = schema
        self.constants = constants

    # --- the allow-list walk ---

    def visit(self, node: ast.AST) -> Node:
        depth = self.depth = self.depth + 1
        if depth > self.max_visit_depth:
            raise TooDeep
        try:
            kind = type(node)
            method = _VISITORS.get(kind)
            if method is not None:
                return method(self, node)
            rejected = REJECTED.get(kind)
            if rejected is not None:
                raise self.error_at(node, rejected[0], rejected[1])
            method = getattr(Checker, "visit_" + kind.__name__, None)
            if method is not None:
                # Found once per node class: the name lookup was a tenth of visiting.
                _VISITORS[kind] = method
                return method(self, node)  # type: ignore[no-any-return]
            raise self.error_at(
                node,
                f"{kind.__name__} is not supported in expressions",
                "see docs/expressions.md for the grammar",
            )
        finally:
            self.depth = depth - 1

    def visit_Constant(self, node: ast.Constant) -> Node:
        value: Any = node.value
        kind = type(value)
        limits = self.limits
        # The literals of most conditions, typed without the general walk of value_type
        # (which gives the same type, and words the error when one is out of bounds).
        if kind is float:
            return Const(self.span(node), T.NUMBER, value)
        if kind is int:
            if (
                INT64_MIN <= value <= INT64_MAX
                and value.bit_length() <= limits.max_int_digits * 3.33
            ):
                return Const(self.span(node), T.INTEGER, value)
        elif kind is str and len(value) <= limits.max_string_len:
            return Const(self.span(node), T.STRING, value)
        return self.constant(node, value, self.span(node))

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
            if not INT64_MIN <= value <= INT64_MAX:
                # Integers are 64-bit (the columnar evaluator's Int64); beyond, results of
                # arithmetic are null, so a literal out there could never compare usefully.
                raise self.error_at(
                    node,
                    "integer does not fit in 64 bits",
                    "write it as a number with a decimal point or exponent, e.g. 1e20",
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
        spec = self.schema.get(name) if self.schema is not None else None
        if spec is not None:
            return Field(span, spec.type, name)
        if name in _LITERALS:
            # JSON's and YAML's spellings, so `env == null` or `x > 5 and true` do not read
            # a field of that name (null for every fact) and silently never match.
            return Const(span, self.value_type(node, _LITERALS[name], 0), _LITERALS[name])
        if self.schema is None:
            return Field(span, T.ANY, name)
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
            raise self.error_at(key_node, *REJECTED[ast.Slice])
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
        literal = node.operand
        if (
            isinstance(node.op, ast.USub)
            and isinstance(literal, ast.Constant)
            and type(literal.value) is int
        ):
            # -9223372036854775808 is the literal 2**63 negated: check the negative value.
            return self.constant(node, -literal.value, self.span(node))
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
            value = -operand.value if op == "-" else operand.value
            # -(-2**63) leaves 64 bits: not folded, so it evaluates to null like any overflow.
            if type(value) is not int or INT64_MIN <= value <= INT64_MAX:
                return self.constant(node, value, span)
        return UnaryOp(span, operand.type, op, operand)

    def visit_BinOp(self, node: ast.BinOp) -> Node:
        op = BINOPS.get(type(node.op))
        if op is None:
            raise self.error_at(
                node,
                f"operator {operator_text(node.op)} is not supported",
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
        visit = self.visit
        operands = tuple([visit(value) for value in node.values])
        for value, operand in zip(node.values, operands, strict=True):
            if operand.type is T.MAP:
                self.condition(value, operand)
        op = "and" if type(node.op) is ast.And else "or"
        return BoolOp(self.span(node), T.BOOLEAN, op, operands)

    def visit_Compare(self, node: ast.Compare) -> Node:
        ops = node.ops
        if len(ops) == 1:
            # One operator, as in most conditions: no pair spans, no lists.
            left_ast, right_ast = node.left, node.comparators[0]
            left, right = self.visit(left_ast), self.visit(right_ast)
            op = CMPOPS[type(ops[0])]
            return self.compare(node, op, left_ast, right_ast, left, right, self.span(node))
        operands = [node.left, *node.comparators]
        checked = [self.visit(operand) for operand in operands]
        parts: list[Node] = []
        for index, op_node in enumerate(node.ops):
            op = CMPOPS[type(op_node)]
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
        first = offset(self.lines, start.line, start.column)
        last = offset(self.lines, end.end_line, end.end_column)
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
            if not is_null_literal(right):
                raise self.error_at(
                    right_ast,
                    f"'{op}' only compares with None",
                    "use == and != to compare values; write x is None to test for null",
                )
            return Compare(span, T.BOOLEAN, op, left, right)
        for side, operand in ((left_ast, left), (right_ast, right)):
            if type(operand) is Const and operand.value is None:
                negated = "not " if op in ("!=", "not in") else ""
                other = right if operand is left else left
                raise self.error_at(
                    side,
                    f"comparing with {operand.span.text} using {op!r} is always null",
                    f"write {other.span.text or 'x'} is {negated}None",
                )
        if op in ("in", "not in"):
            return self.membership(node, op, left_ast, right_ast, left, right, span)
        if op in ORDERING:
            for operand in (left, right):
                if operand.type not in _ORDERED:
                    raise self.error_at(
                        node,
                        f"cannot order {operand.type} values with {op!r}",
                        "compare numbers, strings or datetimes",
                    )
        if not comparable(left.type, right.type):
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
            element = element_type(right)
            if element is not None and not comparable(left.type, element):
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
        result = unify_branches(body, orelse)
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
                raise self.error_at(arg_node, *REJECTED[ast.Starred])
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
            if arg.type not in allowed and not (is_null_literal(arg) and name == "coalesce"):
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
            result = unify_all([arg.type for arg in args if not is_null_literal(arg)])
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
        try:
            check_polars_regex(pattern.value)
        except ValueError as exc:
            raise self.error_at(
                node,
                f"regular expression cannot run column-wise: {exc}",
                "simplify the pattern (large counted repetitions of Unicode classes such as "
                "\\pL{300} are too big for the columnar evaluator)",
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
        if is_null_literal(operand):
            raise self.error_at(node, f"None in arithmetic ({op}) is always null", _COALESCE_FIX)

    def mismatch(self, node: ast.AST, op: str, left: Node, right: Node) -> ExpressionError:
        return self.error_at(
            node,
            f"type mismatch: {left.span.text!r} is {left.type} and {right.span.text!r} is "
            f"{right.type}; {op!r} needs matching types",
            "compare values of the same type (quote strings, leave numbers bare)",
        )


_VISITORS: dict[type[ast.AST], Callable[[Checker, Any], Node]] = {}
_ORDERED = NUMERIC | {T.STRING, T.DATETIME, T.ANY}
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_NO_DUNDER = "expressions read fact fields only; host objects and their attributes are off-limits"
_FUNCTION_FIX = "available functions: " + ", ".join(FUNCTIONS)
_IN_FIX = "write x in ['a', 'b'], x in list_field or 'part' in text"
_COALESCE_FIX = "use coalesce(x, default) to replace a null"
