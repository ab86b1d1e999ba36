"""Helpers the row evaluator's generated code and the explain interpreter call at run time.

Each helper implements one piece of the null semantics (null = Python ``None``) so that the
row evaluator, the explain interpreter and, by the tests, the columnar evaluator agree.
"""

from __future__ import annotations

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "and3",
    "as_utc",
    "div",
    "floordiv",
    "index",
    "int64",
    "member",
    "mod",
    "mul",
    "normalize_now",
    "not3",
    "or3",
    "parse_datetime",
    "power",
    "truthy",
]

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from reclaim.rules.expression.errors import EvaluationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def int64(value: Any) -> Any:
    """An integer result that does not fit in 64 bits is null.

    The columnar evaluator computes integers as Int64 (and checks for overflow there too), so
    Python's unbounded integers would otherwise give answers the columnar path cannot.
    """
    if value.__class__ is int and not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


def _floor(quotient: float) -> float:
    # Polars floors the quotient of two floats; floor() of inf or NaN is itself there.
    return float(math.floor(quotient)) if math.isfinite(quotient) else quotient


def truthy(value: Any) -> bool | None:
    """Truthiness in a condition: null stays null; 0, '' and [] are false, as in Python."""
    if value is None:
        return None
    return bool(value)


def and3(*values: bool | None) -> bool | None:
    """Kleene AND: false wins over null, null wins over true."""
    result: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def or3(*values: bool | None) -> bool | None:
    """Kleene OR: true wins over null, null wins over false."""
    result: bool | None = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def not3(value: bool | None) -> bool | None:
    """Kleene NOT: not null is null."""
    return None if value is None else not value


def member(value: Any, key: str | int) -> Any:
    """``value.key`` / ``value[key]`` for a value whose type was not declared.

    A map missing the key, and a list index out of range, give null, like a missing field.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(key, int) and isinstance(value, Sequence) and not isinstance(value, str):
        return index(value, key)
    raise EvaluationError(
        f"cannot look up {key!r} in a {type(value).__name__}",
        fix="only maps (by key) and lists (by integer index) can be indexed",
    )


def index(value: Sequence[Any] | None, position: int) -> Any:
    """``value[position]`` on a list; out of range gives null, as in the columnar evaluator."""
    if value is None:
        return None
    size = len(value)
    if -size <= position < size:
        return value[position]
    return None


def mul(left: Any, right: Any) -> Any:
    """``*`` on operands whose types were not declared: numbers only, never repetition."""
    if left is None or right is None:
        return None
    if isinstance(left, str | bytes | list | tuple) or isinstance(
        right, str | bytes | list | tuple
    ):
        raise EvaluationError(
            "'*' on a string or list would repeat it; repetition is not supported",
            fix="declare the field as a number in the schema, or fix the fact",
        )
    return int64(left * right)


def div(left: Any, right: Any) -> Any:
    """``/``: null if either side is null or the divisor is zero."""
    if left is None or right is None or right == 0:
        return None
    return left / right


def floordiv(left: Any, right: Any) -> Any:
    """``//``: floor division; null if either side is null or the divisor is zero.

    With a float operand the quotient is ``floor(left / right)``, as Polars computes it (so
    ``1.0 // 0.1`` is 10.0, where Python's exact floor division gives 9.0).
    """
    if left is None or right is None or right == 0:
        return None
    if isinstance(left, float) or isinstance(right, float):
        return _floor(left / right)
    return int64(left // right)


def mod(left: Any, right: Any) -> Any:
    """``%``: modulo with the sign of the divisor; null if null or the divisor is zero.

    With a float operand it is ``left - right * floor(left / right)``, as Polars computes it.
    """
    if left is None or right is None or right == 0:
        return None
    if isinstance(left, str):
        raise EvaluationError("'%' formatting of strings is not supported", fix="use numbers")
    if isinstance(left, float) or isinstance(right, float):
        return left - right * _floor(left / right)
    return left % right


def power(base: Any, exponent: int) -> float | None:
    """``**`` with an integer literal exponent, always a float (as column-wise).

    Zero to a negative power is null, like division by zero; overflow gives infinity.
    """
    if base is None:
        return None
    if base == 0 and exponent < 0:
        return None
    try:
        return float(base) ** exponent
    except OverflowError:
        sign = -1.0 if base < 0 and exponent % 2 else 1.0
        return math.copysign(math.inf, sign)


def as_utc(value: Any) -> Any:
    """Datetimes compare as instants: naive ones are taken to be UTC, dates as UTC midnight,
    and ISO 8601 text (as JSON carries datetimes) is parsed."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    return value


def parse_datetime(text: str) -> datetime:
    """ISO 8601 text as an aware datetime (naive means UTC); ValueError if it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not an ISO 8601 datetime such as 2024-01-31T12:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def normalize_now(now: datetime | None) -> datetime:
    """The evaluation time: the given one (naive means UTC), else the current time in UTC."""
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, not {type(now).__name__}")
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now
