"""The columnar evaluator: the checked tree compiled to one Polars expression.

Polars already has SQL three-valued logic: arithmetic and comparisons propagate null, ``&`` and
``|`` are Kleene, ``when(null)`` takes the ``otherwise`` branch. What it lacks we spell out:
division by zero is null (not inf/NaN), truthiness of non-booleans, and ``in`` on a null value.
Maps are Struct columns. When the frame's schema is given, a field or struct key missing from it
evaluates to null (as a missing key does in the row evaluator), and fields typed ``any`` take
their type from the column's dtype.
"""

from __future__ import annotations

__all__ = ["compile_columnar"]

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from reclaim.rules.expression.errors import EvaluationError, ExpressionError
from reclaim.rules.expression.explain import explain_node
from reclaim.rules.expression.functions import FUNCTIONS, element_truth
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
    is_null_literal,
)
from reclaim.rules.expression.runtime import INT64_MAX, INT64_MIN, as_utc, truthy
from reclaim.rules.expression.types import NUMERIC, FieldType, unify_all

T = FieldType
_NULL = pl.lit(None)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compile_columnar(
    node: Node,
    *,
    now: datetime,
    schema: Mapping[str, pl.DataType] | None = None,
    predicate: bool = False,
) -> pl.Expr:
    """The Polars expression computing ``node`` for every row; null where the value is null.

    With ``predicate`` the result is the truth value of ``node`` (a Boolean column: 0, '' and
    [] are false, as the row evaluator's ``row_predicate`` decides), for a bare condition such
    as ``invoice_number``.
    """
    compiler = _Columnar(now, schema)
    return compiler.bool3(node) if predicate else compiler.value(node)


def dtype_to_field_type(dtype: pl.DataType) -> FieldType:
    """The FieldType of a Polars dtype (ANY for dtypes the language has no type for)."""
    if dtype == pl.Boolean:
        return T.BOOLEAN
    if dtype.is_integer():
        return T.INTEGER
    if dtype.is_numeric():
        return T.NUMBER
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return T.STRING
    if dtype.is_temporal() and dtype != pl.Duration and dtype != pl.Time:
        return T.DATETIME
    if isinstance(dtype, pl.List | pl.Array):
        return T.LIST
    if isinstance(dtype, pl.Struct):
        return T.MAP
    return T.ANY


class _Columnar:
    def __init__(self, now: datetime, schema: Mapping[str, pl.DataType] | None) -> None:
        self.now = now
        self.schema = schema
        self.constants: dict[int, bool] = {}

    def constant(self, node: Node) -> bool:
        """Whether ``node`` has one value for every row: it reads no field, or only fields
        that are null in every row (absent from the frame, or a column of dtype Null)."""
        known = self.constants.get(id(node))
        if known is None:
            if isinstance(node, Field | Member) and self.always_null(node):
                known = True
            elif isinstance(node, IfElse) and all(
                self.constant(branch) and self.fold(branch) is None
                for branch in (node.body, node.orelse)
            ):
                # Null whichever branch is taken, whatever the condition reads: folding it
                # keeps Polars from typing the result Null and refusing e.g. its negation
                # (found by make fuzz: '-(n if flag else n) in l' with n null in every row).
                known = True
            else:
                known = not isinstance(node, Field) and all(
                    self.constant(child) for child in children(node)
                )
            self.constants[id(node)] = known
        return known

    def always_null(self, node: Field | Member) -> bool:
        if self.schema is None:
            return False
        if isinstance(node, Field):
            dtype = self.schema.get(node.name)
            return dtype is None or _instance(dtype) == pl.Null
        parent = node.obj
        if isinstance(parent, Field | Member) and self.always_null(parent):
            return True
        parent_dtype = self.dtype(parent)
        if isinstance(parent_dtype, pl.Struct) and isinstance(node.key, str):
            dtype = self.dtype(node)
            return dtype is None or dtype == pl.Null
        return parent_dtype == pl.Null

    def fold(self, node: Node) -> Any:
        """The one value of a constant ``node``: the row semantics on a fact with no fields."""
        return explain_node(node, {}, self.now).value

    def dtype(self, node: Node) -> pl.DataType | None:
        """The frame's dtype of a field or struct member, if the frame schema is known."""
        if self.schema is None:
            return None
        if isinstance(node, Field):
            dtype = self.schema.get(node.name)
            return None if dtype is None else _instance(dtype)
        if isinstance(node, Member):
            parent = self.dtype(node.obj)
            if isinstance(parent, pl.Struct) and isinstance(node.key, str):
                for field in parent.fields:
                    if field.name == node.key:
                        return _instance(field.dtype)
            if isinstance(parent, pl.List | pl.Array) and parent.inner is not None:
                return _instance(parent.inner)
        return None

    def type_of(self, node: Node) -> FieldType:
        """The static type, refined for ``any`` nodes by the frame's dtypes where known."""
        if node.type is not T.ANY:
            return node.type
        if isinstance(node, Field | Member):
            dtype = self.dtype(node)
            return dtype_to_field_type(dtype) if dtype is not None else T.ANY
        if isinstance(node, IfElse):
            branches = [b for b in (node.body, node.orelse) if not self.null_everywhere(b)]
            return unify_all([self.type_of(b) for b in branches]) or T.ANY
        if isinstance(node, Call) and FUNCTIONS[node.name].same_type_result:
            args = [self.type_of(a) for a in node.args if not self.null_everywhere(a)]
            return unify_all(args) or T.ANY
        if isinstance(node, UnaryOp) and node.op != "not":
            return self.type_of(node.operand)
        if isinstance(node, BinOp):
            left, right = self.type_of(node.left), self.type_of(node.right)
            if left in NUMERIC and right in NUMERIC:
                whole = left is T.INTEGER and right is T.INTEGER and node.op not in ("/", "**")
                return T.INTEGER if whole else T.NUMBER
            if node.op == "+" and left is T.STRING and right is T.STRING:
                return T.STRING
        return T.ANY

    def null_everywhere(self, node: Node) -> bool:
        """Whether ``node`` is null in every row (so it says nothing about a type)."""
        return is_null_literal(node) or (self.constant(node) and self.fold(node) is None)

    def unknown_type(self, node: Node, what: str) -> ExpressionError:
        return ExpressionError(
            f"{what} of {node.span.text!r} (type any) cannot be computed column-wise",
            fix="declare the field's type in the fact schema, or pass the frame's schema",
        )

    # --- values ---

    def value(self, node: Node) -> pl.Expr:
        if isinstance(node, Const):
            return self.const(node.value)
        if self.constant(node):
            # A sub-expression that reads no field (or only fields null in every row) is
            # computed once, here, by the row semantics, and becomes a literal: Polars
            # broadcasts literals, but not e.g. lit(0).is_in(...) (length 1), and a Null-typed
            # column would refuse typed operations (str.*, abs) that the row evaluator skips.
            value = self.fold(node)
            return _typed_null(self.type_of(node)) if value is None else self.const(value)
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, UnaryOp):
            if node.op == "not":
                return ~self.bool3(node.operand)
            operand = self.value(node.operand)
            if node.op == "+":
                return operand
            if self.type_of(node.operand) is T.INTEGER:
                # -(-2**63) does not fit in Int64: null, as in the row evaluator. Cast first:
                # Polars may type when/then over integer literals as Int32, and the negation
                # of -2**62 then came out null (found by make fuzz).
                wide = operand.cast(pl.Int64)
                return pl.when(wide != INT64_MIN).then(-wide)
            return -operand
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, BoolOp):
            combined = self.bool3(node.operands[0])
            for part in node.operands[1:]:
                other = self.bool3(part)
                combined = (combined & other) if node.op == "and" else (combined | other)
            return combined
        if isinstance(node, IfElse):
            return (
                pl.when(self.bool3(node.test))
                .then(self.value(node.body))
                .otherwise(self.value(node.orelse))
            )
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, ListLit):
            return pl.concat_list([self.value(item) for item in node.items])
        raise AssertionError(f"unknown node {node!r}")

    def field(self, node: Field) -> pl.Expr:
        if self.schema is not None:
            dtype = self.dtype(node)
            if dtype is None or dtype == pl.Null:
                # Absent, or a column of nothing but nulls: a null of the declared type, so
                # typed operations (str.*, comparisons) still apply.
                return _typed_null(node.type)
            column = pl.col(node.name)
            if node.type is T.NUMBER and dtype.is_integer():
                # A number field holding whole numbers computes as floats, as the row
                # evaluator mixes them, never with Int64's wrap-around.
                return column.cast(pl.Float64)
            if node.type is T.DATETIME and dtype in (pl.String, pl.Categorical):
                # JSON carries datetimes as ISO 8601 text; the row evaluator parses them too.
                return column.cast(pl.String).str.to_datetime(time_unit="us", time_zone="UTC")
            return column
        target = _POLARS_TYPES.get(node.type)
        # Without the frame's schema an all-null column may arrive as dtype Null; casting to
        # the declared type is free when the dtype already matches.
        return pl.col(node.name) if target is None else pl.col(node.name).cast(target)

    def const(self, value: Any) -> pl.Expr:
        if isinstance(value, list | tuple):
            return pl.lit(pl.Series(values=[list(value)]))
        if isinstance(value, Mapping):
            return pl.lit(pl.Series(values=[dict(value)]))
        return pl.lit(value)

    def member(self, node: Member) -> pl.Expr:
        obj = self.value(node.obj)
        obj_type = self.type_of(node.obj)
        if isinstance(node.key, str) and obj_type in (T.MAP, T.ANY):
            if self.schema is not None:
                dtype = self.dtype(node)
                if dtype is None or dtype == pl.Null:
                    return _typed_null(node.type)
            return obj.struct.field(node.key)
        if isinstance(node.key, int) and obj_type in (T.LIST, T.ANY):
            return obj.list.get(node.key, null_on_oob=True)
        raise self.unknown_type(node.obj, f"looking up {node.key!r}")

    def bool3(self, node: Node) -> pl.Expr:
        """Truthiness as a Boolean column: 0, '' and [] are false, null stays null."""
        if self.constant(node):
            return pl.lit(truthy(self.fold(node)), dtype=pl.Boolean)
        expr = self.value(node)
        kind = self.type_of(node)
        if kind is T.BOOLEAN:
            return expr
        if kind in NUMERIC:
            return expr != 0
        if kind is T.STRING:
            return expr.str.len_chars() > 0
        if kind is T.LIST:
            return expr.list.len() > 0
        if kind is T.DATETIME:
            return pl.when(expr.is_null()).then(_NULL).otherwise(pl.lit(True))
        if isinstance(node, Const) and node.value is None:
            return pl.lit(None, dtype=pl.Boolean)
        if isinstance(node, IfElse):
            # Branches of different types (text or a boolean): truthiness of the branch taken.
            return (
                pl.when(self.bool3(node.test))
                .then(self.bool3(node.body))
                .otherwise(self.bool3(node.orelse))
            )
        raise self.unknown_type(node, "the truth value")

    def binop(self, node: BinOp) -> pl.Expr:
        left = self.value(node.left)
        if node.op == "**":
            assert isinstance(node.right, Const)
            exponent: int = node.right.value
            result = left.cast(pl.Float64).pow(exponent)
            if exponent < 0:
                result = pl.when(left == 0).then(_NULL).otherwise(result)
            return result
        right = self.value(node.right)
        whole = self.type_of(node.left) is T.INTEGER and self.type_of(node.right) is T.INTEGER
        if node.op in ("+", "-", "*"):
            if whole:
                # Exact in Int128 (a product of two Int64 fits), then null outside Int64: the
                # row evaluator's integers are unbounded and it nulls the same results.
                wide = _ARITHMETIC[node.op](left.cast(pl.Int128), right.cast(pl.Int128))
                return pl.when(wide.is_between(INT64_MIN, INT64_MAX)).then(wide.cast(pl.Int64))
            return _ARITHMETIC[node.op](left, right)
        zero = right == 0
        if node.op == "/":
            divided = left / right
        elif node.op == "//":
            divided = left // right
            if whole:
                zero = zero | ((left == INT64_MIN) & (right == -1))
        else:
            divided = left % right
        return pl.when(zero).then(_NULL).otherwise(divided)

    def epoch(self, node: Node, expr: pl.Expr) -> pl.Expr:
        if isinstance(node, Const) and isinstance(node.value, datetime):
            return pl.lit((_aware(node.value) - _EPOCH) // timedelta(microseconds=1))
        return expr.dt.epoch("us")

    def compare(self, node: Compare) -> pl.Expr:
        if node.op == "is":
            return self.value(node.left).is_null()
        if node.op == "is not":
            return self.value(node.left).is_not_null()
        left = self.value(node.left)
        if node.op in ("in", "not in"):
            found = self.membership(node, left)
            return ~found if node.op == "not in" else found
        right = self.value(node.right)
        left_type, right_type = self.type_of(node.left), self.type_of(node.right)
        if _never_equal(left_type, right_type):
            return self.mismatch(node, left, right)
        if T.DATETIME in (left_type, right_type):
            left = self.epoch(node.left, left)
            right = self.epoch(node.right, right)
        if isinstance(node.left, Const) and not isinstance(node.right, Const):
            # The same comparison written column first: with a literal on the left and a
            # column of nulls parsed as datetimes on the right, Polars returned one row for the
            # whole table (found by make fuzz: '0 == days_since(datetime(ds))'). Polars orders
            # values (NaN included) totally, so a > b and b < a are the same answer.
            result: pl.Expr = _COMPARE[_MIRRORED[node.op]](right, left)
        else:
            result = _COMPARE[node.op](left, right)
        # Polars orders NaN above every number and makes it equal to itself; the language
        # (like Python and the row evaluator) follows IEEE 754: every comparison with NaN is
        # false, except !=. Only the sides that can hold NaN pay for the correction.
        nan_left = self.may_be_nan(node.left, left_type)
        nan_right = self.may_be_nan(node.right, right_type)
        if node.op == "!=":
            if nan_left:
                result = result | (left.is_nan() & right.is_not_null())
            return result
        # Which side's NaN Polars gets wrong: a > NaN and NaN < b are already false there.
        masked = (
            [(left, right, node.right, nan_left)]
            if node.op in ("==", ">", ">=")
            else [(right, left, node.left, nan_right)]
        )
        for side, other, other_node, nan in masked:
            if nan:
                keep = side.is_not_nan()
                if not _never_null(other_node):
                    keep = keep | other.is_null()
                result = result & keep
        return result

    def may_be_nan(self, node: Node, kind: FieldType) -> bool:
        if isinstance(node, Const):
            return isinstance(node.value, float) and math.isnan(node.value)
        return kind is T.NUMBER

    def mismatch(self, node: Compare, left: pl.Expr, right: pl.Expr) -> pl.Expr:
        """Values of types that never compare (a string column against a number): == is
        false and != true, as in Python; ordering is an error, as in the row evaluator."""
        if node.op in ("==", "!="):
            either_null = left.is_null() | right.is_null()
            return pl.when(either_null).then(_NULL).otherwise(pl.lit(node.op == "!="))
        raise EvaluationError(
            f"{self.type_of(node.left)} and {self.type_of(node.right)} values cannot be "
            f"ordered: {node.span.text!r}",
            fix="declare the fields' types in the schema, or correct the facts",
        )

    def membership(self, node: Compare, left: pl.Expr) -> pl.Expr:
        right_node = node.right
        if isinstance(right_node, Const) and isinstance(right_node.value, list | tuple):
            items = [item for item in right_node.value if item is not None]
            if not items:
                return pl.when(left.is_null()).then(_NULL).otherwise(pl.lit(False))
            # is_in gives null for a null value and, with nulls dropped, never matches null.
            # Polars 2 no longer coerces Int64 against Float64 here: align numbers by hand.
            if all(isinstance(i, int | float) and not isinstance(i, bool) for i in items):
                exact = self.type_of(node.left) is T.INTEGER
                if not (exact and all(isinstance(i, int) for i in items)):
                    left = left.cast(pl.Float64)
                    items = [float(i) for i in items]
            return left.is_in(pl.Series(values=items).implode())
        if self.null_everywhere(right_node):
            # `x in z` with z null in every row (absent, or all null): null, as row-wise.
            return pl.lit(None, dtype=pl.Boolean)
        if isinstance(right_node, ListLit):
            hits = [(left == self.value(item)).fill_null(False) for item in right_node.items]
            return pl.when(left.is_null()).then(_NULL).otherwise(pl.any_horizontal(hits))
        right = self.value(right_node)
        kind = self.type_of(right_node)
        if kind is T.STRING:
            return right.str.contains(left, literal=True)
        if kind is T.LIST:
            inner = self.dtype(right_node)
            element = inner.inner if isinstance(inner, pl.List | pl.Array) else None
            left_kind = self.type_of(node.left)
            numeric = element is not None and element.is_numeric() and left_kind is not T.STRING
            # Compare numbers as floats when the two sides disagree (Polars 2 is strict).
            if numeric and (element.is_float() or left_kind is not T.INTEGER):  # type: ignore[union-attr]
                left = left.cast(pl.Float64)
                right = right.cast(pl.List(pl.Float64))
            return (
                pl.when(left.is_null() | right.is_null())
                .then(_NULL)
                .otherwise(right.list.contains(left))
            )
        raise self.unknown_type(right_node, "membership ('in')")

    def call(self, node: Call) -> pl.Expr:
        if node.name in ("any", "all"):
            return self.any_all(node)
        spec = FUNCTIONS[node.name]
        args = [self.value(arg) for arg in node.args]
        types = [self.type_of(arg) for arg in node.args]
        for index, arg in enumerate(node.args):
            # A field of type any that is null in every row folds to an untyped null, which
            # str.* and the like refuse ("expected String type, got: null"); the function's
            # parameter type, when it allows one only, types the null as the row path needs
            # no type (found by make fuzz: 'not contains(z, s)' with z absent from the frame).
            if types[index] is T.ANY and self.constant(arg) and self.fold(arg) is None:
                allowed = spec.params[min(index, len(spec.params) - 1)] - {T.ANY}
                if len(allowed) == 1:
                    args[index] = _typed_null(next(iter(allowed)))
        if spec.same_type_result:
            # An argument null in every row says nothing of the type (type_of skips it), but
            # its Polars null has a dtype of its own: min(a, round(n)) with n all null was
            # Float64 where a, and the static type, are Int64, and 'in' a list of Int64 then
            # failed (found by make fuzz). Such nulls take the result's type.
            result = self.type_of(node)
            if result in _POLARS_TYPES or result is T.DATETIME:
                for index, arg in enumerate(node.args):
                    if self.null_everywhere(arg):
                        args[index] = _typed_null(result)
        literals = [arg.value if isinstance(arg, Const) else None for arg in node.args]
        if node.name == "len" and types[0] not in (T.STRING, T.LIST):
            raise self.unknown_type(node.args[0], "len()")
        return spec.column(args, types, literals, self.now)

    def any_all(self, node: Call) -> pl.Expr:
        """any()/all() by the truthiness of each item, null items skipped (as the row
        evaluator does); the item dtype comes from the frame's schema."""
        items = node.args[0]
        if isinstance(items, ListLit):
            truths = [self.bool3(item) for item in items.items]
            if node.name == "any":
                return pl.any_horizontal([truth.fill_null(False) for truth in truths])
            return pl.all_horizontal([truth.fill_null(True) for truth in truths])
        if self.type_of(items) is not T.LIST:
            raise self.unknown_type(items, f"{node.name}()")
        dtype = self.dtype(items)
        inner = dtype.inner if isinstance(dtype, pl.List | pl.Array) else None
        truths_list = self.value(items).list.eval(element_truth(_optional(inner)))
        return truths_list.list.any() if node.name == "any" else truths_list.list.all()


def _optional(dtype: Any) -> pl.DataType | None:
    return None if dtype is None else _instance(dtype)


def _aware(value: datetime) -> datetime:
    result: datetime = as_utc(value)
    return result


def _instance(dtype: Any) -> pl.DataType:
    # Polars schemas may hold dtype classes (pl.Int64) as well as instances (pl.Int64()).
    result: pl.DataType = dtype if isinstance(dtype, pl.DataType) else dtype()
    return result


_ARITHMETIC: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}
_COMPARE: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _never_equal(left: FieldType, right: FieldType) -> bool:
    # Text against numbers or booleans: Python answers == with False, Polars raises.
    others = NUMERIC | {T.BOOLEAN}
    return (left is T.STRING and right in others) or (right is T.STRING and left in others)


def _never_null(node: Node) -> bool:
    return isinstance(node, Const) and node.value is not None


_POLARS_TYPES: dict[FieldType, pl.DataType] = {
    T.NUMBER: pl.Float64(),
    T.INTEGER: pl.Int64(),
    T.STRING: pl.String(),
    T.BOOLEAN: pl.Boolean(),
}


def _typed_null(kind: FieldType) -> pl.Expr:
    target = _POLARS_TYPES.get(kind)
    if kind is T.DATETIME:
        target = pl.Datetime("us", "UTC")
    return pl.lit(None, dtype=target)
