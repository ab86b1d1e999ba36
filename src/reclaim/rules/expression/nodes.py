"""The checked tree: what the parser produces and every evaluator consumes.

Nodes are immutable and carry their static type and source span. Only the node kinds below
exist; anything else in the user's text was rejected by the parser. Chained comparisons are
already split into ``BoolOp("and", ...)`` of binary ``Compare`` nodes.
"""

from __future__ import annotations

__all__ = [
    "BinOp",
    "BoolOp",
    "Call",
    "Compare",
    "Const",
    "Field",
    "IfElse",
    "ListLit",
    "Member",
    "Node",
    "Span",
    "UnaryOp",
    "children",
    "element_type",
    "is_null_literal",
    "unify_branches",
]

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from reclaim.rules.expression.types import FieldType, type_of_value, unify, unify_all


class Span(NamedTuple):
    """Where a node sits in the expression text: 1-based line and column, end exclusive.

    A named tuple, not a dataclass: it is built by the C tuple constructor, and a 2,000-rule
    file holds about 30,000 of them. Unlike a plain tuple, an instance of a tuple subclass stays
    tracked by the garbage collector, so every full collection still walks them.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    text: str


@dataclass(frozen=True, slots=True)
class Node:
    span: Span
    type: FieldType


@dataclass(frozen=True, slots=True)
class Const(Node):
    """A literal, or a rule-set constant resolved at compile time."""

    value: Any


@dataclass(frozen=True, slots=True)
class Field(Node):
    """A top-level fact field; missing from the fact means null."""

    name: str


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``obj.key`` / ``obj['key']`` on a map, or ``obj[index]`` on a list; absent means null."""

    obj: Node
    key: str | int


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    op: str  # "-", "+", "not"
    operand: Node


@dataclass(frozen=True, slots=True)
class BinOp(Node):
    op: str  # "+", "-", "*", "/", "//", "%", "**"
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # "==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str  # "and", "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    test: Node
    body: Node
    orelse: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    """A list literal whose items are not all constants (those become a ``Const``)."""

    items: tuple[Node, ...]


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of ``node``, in source order."""
    # One dictionary lookup on the node's class: every checked tree is walked a few times
    # while a rule file loads, and a chain of isinstance tests was a tenth of loading.
    of = _CHILDREN.get(type(node))
    return () if of is None else of(node)


_CHILDREN: dict[type[Node], Callable[[Any], tuple[Node, ...]]] = {
    Member: lambda node: (node.obj,),
    UnaryOp: lambda node: (node.operand,),
    BinOp: lambda node: (node.left, node.right),
    Compare: lambda node: (node.left, node.right),
    BoolOp: lambda node: node.operands,
    IfElse: lambda node: (node.test, node.body, node.orelse),
    Call: lambda node: node.args,
    ListLit: lambda node: node.items,
}


def is_null_literal(node: Node) -> bool:
    """Whether ``node`` is the literal None."""
    return isinstance(node, Const) and node.value is None


def element_type(node: Node) -> FieldType | None:
    """The one type of a constant list's items, if they share one (nulls ignored)."""
    if isinstance(node, Const) and isinstance(node.value, list | tuple):
        types = {type_of_value(item) for item in node.value if item is not None}
        return unify_all(list(types)) if types else None
    if isinstance(node, ListLit):
        return unify_all([item.type for item in node.items if not is_null_literal(item)])
    return None


def unify_branches(body: Node, orelse: Node) -> FieldType | None:
    """The type of ``body if c else orelse`` (a None branch takes the other's type), or None."""
    if is_null_literal(body):
        return orelse.type
    if is_null_literal(orelse):
        return body.type
    return unify(body.type, orelse.type)
