"""Explain: evaluate the checked tree node by node and keep every intermediate value.

This is a separate, plain interpreter over the checked tree, used only when someone asks why a
rule did or did not match; the compiled row and columnar evaluators carry no explain
bookkeeping at all. It follows the same null semantics (tests check all three agree).
"""

from __future__ import annotations

__all__ = ["ExplainNode", "explain_node"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reclaim.rules.expression import runtime
from reclaim.rules.expression.display import show_value
from reclaim.rules.expression.errors import EvaluationError
from reclaim.rules.expression.functions import FUNCTIONS
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
    UnaryOp,
    children,
)
from reclaim.rules.expression.regex import compile_regex
from reclaim.rules.expression.types import NUMERIC, FieldType

T = FieldType


@dataclass
class ExplainNode:
    """One sub-expression with the value it had for one fact.

    For a comparison, ``op`` is the operator, ``actual`` the left value and ``expected`` the
    right one. ``value`` is None when the result is null.
    """

    text: str
    value: Any
    op: str | None = None
    actual: Any = None
    expected: Any = None
    children: list[ExplainNode] = field(default_factory=list)

    def render(self) -> str:
        """A human tree: each condition with its values and ✓ (true), ✗ (false) or null."""
        lines: list[str] = []
        self._render(lines, "", "", True)
        return "\n".join(lines)

    def _render(self, lines: list[str], prefix: str, child_prefix: str, top: bool) -> None:
        lines.append(prefix + self.line())
        shown = [] if self.op is not None else self.children
        for position, child in enumerate(shown):
            last = position == len(shown) - 1
            branch = "└─ " if last else "├─ "
            extend = "   " if last else "│  "
            child._render(lines, child_prefix + branch, child_prefix + extend, False)

    def line(self) -> str:
        """This node on one line, e.g. ``cpu_avg < 10  → 4.2 < 10 ✓``."""
        if self.op is not None:
            detail = f"{_show(self.actual)} {self.op} {_show(self.expected)}"
            if self.op in ("is", "is not"):
                detail = f"{_show(self.actual)} {self.op} None"
            return f"{self.text}  → {detail} {_mark(self.value)}"
        if isinstance(self.value, bool) or self.value is None:
            return f"{self.text}  → {_mark(self.value)}"
        return f"{self.text}  → {_show(self.value)}"


def _show(value: Any) -> str:
    return show_value(value)


def _mark(value: Any) -> str:
    if value is True:
        return "✓"
    if value is False:
        return "✗"
    return show_value(value)


def explain_node(node: Node, fact: Mapping[str, Any], now: datetime) -> ExplainNode:
    """The explain tree of ``node`` for ``fact`` at evaluation time ``now``."""
    try:
        return _Interpreter(fact, now).visit(node)
    except (TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise EvaluationError(
            f"cannot evaluate {node.span.text!r}: {exc}",
            fix="declare the fields' types in the schema, or correct the facts",
        ) from exc


class _Interpreter:
    def __init__(self, fact: Mapping[str, Any], now: datetime) -> None:
        self.fact = fact
        self.now = now

    def visit(self, node: Node) -> ExplainNode:
        text = node.span.text
        if isinstance(node, Const):
            return ExplainNode(text, node.value)
        if isinstance(node, Field):
            return ExplainNode(text, self.fact.get(node.name))
        if isinstance(node, Member):
            obj = self.visit(node.obj)
            if obj.value is None:
                value = None
            elif node.obj.type is T.MAP and isinstance(node.key, str):
                value = obj.value.get(node.key)
            elif node.obj.type is T.LIST and isinstance(node.key, int):
                value = runtime.index(obj.value, node.key)
            else:
                value = runtime.member(obj.value, node.key)
            return ExplainNode(text, value, children=[obj])
        if isinstance(node, UnaryOp):
            operand = self.visit(node.operand)
            if node.op == "not":
                value = runtime.not3(_bool3(node.operand, operand.value))
            elif node.op == "-":
                value = None if operand.value is None else _bounded(node, -operand.value)
            else:
                value = operand.value
            return ExplainNode(text, value, children=[operand])
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, BoolOp):
            children = [self.visit(operand) for operand in node.operands]
            flags = [
                _bool3(op, child.value) for op, child in zip(node.operands, children, strict=True)
            ]
            combine = runtime.and3 if node.op == "and" else runtime.or3
            return ExplainNode(text, combine(*flags), children=children)
        if isinstance(node, IfElse):
            test = self.visit(node.test)
            taken = self.visit(node.body if _bool3(node.test, test.value) is True else node.orelse)
            return ExplainNode(text, taken.value, children=[test, taken])
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, ListLit):
            items = [self.visit(item) for item in node.items]
            return ExplainNode(text, [item.value for item in items], children=items)
        raise AssertionError(f"unknown node {node!r}")

    def binop(self, node: BinOp) -> ExplainNode:
        left = self.visit(node.left)
        right = self.visit(node.right)
        a, b = left.value, right.value
        value: Any
        if node.op == "**":
            value = runtime.power(a, b)
        elif node.op == "/":
            value = runtime.div(a, b)
        elif node.op == "//":
            value = runtime.floordiv(a, b)
        elif node.op == "%":
            value = runtime.mod(a, b)
        elif node.op == "*" and not (node.left.type in NUMERIC and node.right.type in NUMERIC):
            value = runtime.mul(a, b)
        elif a is None or b is None:
            value = None
        elif node.op == "+":
            value = _bounded(node, a + b)
        elif node.op == "-":
            value = _bounded(node, a - b)
        else:
            value = _bounded(node, a * b)
        return ExplainNode(node.span.text, value, children=[left, right])

    def compare(self, node: Compare) -> ExplainNode:
        left = self.visit(node.left)
        right = self.visit(node.right)
        a, b = left.value, right.value
        value: bool | None
        if node.op == "is":
            value = a is None
        elif node.op == "is not":
            value = a is not None
        elif a is None or b is None:
            value = None
        elif node.op in ("in", "not in"):
            found = a in b
            value = found if node.op == "in" else not found
        else:
            if T.DATETIME in (node.left.type, node.right.type):
                a, b = runtime.as_utc(a), runtime.as_utc(b)
            value = _COMPARE[node.op](a, b)
        return ExplainNode(
            node.span.text,
            value,
            op=node.op,
            actual=left.value,
            expected=right.value,
            children=[left, right],
        )

    def call(self, node: Call) -> ExplainNode:
        spec = FUNCTIONS[node.name]
        children = [self.visit(arg) for arg in node.args]
        args = [child.value for child in children]
        if node.name == "matches":
            args[1] = compile_regex(args[1])
        if spec.needs_now:
            args.insert(0, self.now)
        return ExplainNode(node.span.text, spec.row(*args), children=children)


def _bounded(node: Node, value: Any) -> Any:
    # As the row evaluator: integer results outside 64 bits are null (see runtime.int64).
    if all(child.type in (T.INTEGER, T.ANY) for child in children(node)):
        return runtime.int64(value)
    return value


def _bool3(node: Node, value: Any) -> bool | None:
    if node.type is T.BOOLEAN:
        return value  # type: ignore[no-any-return]
    return runtime.truthy(value)


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
