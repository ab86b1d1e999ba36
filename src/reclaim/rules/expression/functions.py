"""The fixed function table: the only functions an expression can call.

Each function registers with its signature, null behaviour, doc and an example (a test runs
every example through both evaluators). ``row`` is the null-aware Python implementation used by
the row evaluator and explain; ``column`` builds the equivalent Polars expression.
"""

from __future__ import annotations

__all__ = ["FUNCTIONS", "FunctionSpec", "element_truth"]

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reclaim.rules.expression.regex import polars_regex
from reclaim.rules.expression.runtime import INT64_MIN, as_utc, int64, parse_datetime
from reclaim.rules.expression.types import NUMERIC, FieldType

if TYPE_CHECKING:
    import polars as pl
else:
    from reclaim.rules.expression.lazy import polars as pl

T = FieldType
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ANY_TYPE = frozenset(FieldType)
_NUMBER = NUMERIC | {T.ANY}
_STRING = frozenset({T.STRING, T.ANY})
_SIZED = frozenset({T.STRING, T.LIST, T.ANY})
_TIME = frozenset({T.DATETIME, T.ANY})
_LIST = frozenset({T.LIST, T.ANY})
_CONVERTIBLE = frozenset({T.STRING, T.NUMBER, T.INTEGER, T.BOOLEAN, T.ANY})

# (argument expressions, argument types, literal argument values or None, evaluation time)
ColumnBuilder = Callable[
    [Sequence["pl.Expr"], Sequence[FieldType], Sequence[Any], datetime], "pl.Expr"
]


@dataclass(frozen=True)
class FunctionSpec:
    """One callable function of the expression language."""

    name: str
    signature: str
    doc: str
    nulls: str
    example: str
    example_fact: Mapping[str, Any]
    example_result: Any
    returns: FieldType
    params: tuple[frozenset[FieldType], ...]
    """Allowed types per argument; with ``variadic`` the last entry repeats."""
    row: Callable[..., Any]
    column: ColumnBuilder
    min_args: int
    max_args: int | None
    variadic: bool = False
    needs_now: bool = False
    """The row implementation takes the evaluation time as its first argument."""
    literal_args: frozenset[int] = field(default_factory=frozenset)
    """Argument positions that must be literals (checked and prepared at compile time)."""
    same_type_result: bool = False
    """The result has the (unified) type of the arguments, as for coalesce, min and max."""


# --- row implementations: every one returns None (null) per its documented null behaviour ---


def _len(value: Any) -> int | None:
    return None if value is None else len(value)


def _abs(value: Any) -> Any:
    return None if value is None else int64(abs(value))


def _extreme(pick: Callable[..., Any], values: Sequence[Any]) -> Any:
    # NaN is skipped like null (as Polars' min/max_horizontal do): Python's min() would answer
    # by argument order, since every comparison with NaN is false.
    present = [v for v in values if v is not None]
    numbers = [v for v in present if v == v]
    if numbers:
        return pick(numbers)
    return present[0] if present else None


def _min(*values: Any) -> Any:
    return _extreme(min, values)


def _max(*values: Any) -> Any:
    return _extreme(max, values)


def _round(value: Any, digits: int = 0) -> Any:
    if value is None:
        return None
    # Polars rounds x * 10**digits half to even and divides back; Python's round() works on
    # the exact binary value instead (round(2.675, 2) == 2.67, Polars 2.68). We follow Polars,
    # whose answer is also the one people expect from the decimal text.
    scale = 10.0**digits
    scaled = float(value) * scale
    if not math.isfinite(scaled):
        # Too large to scale (or not a number): Polars leaves such a value as it is.
        return float(value)
    return round(scaled) / scale


def _lower(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


def _startswith(value: str | None, prefix: str | None) -> bool | None:
    return None if value is None or prefix is None else value.startswith(prefix)


def _endswith(value: str | None, suffix: str | None) -> bool | None:
    return None if value is None or suffix is None else value.endswith(suffix)


def _contains(value: str | None, part: str | None) -> bool | None:
    return None if value is None or part is None else part in value


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _now(now: datetime) -> datetime:
    return now


def _days_since(now: datetime, value: Any) -> float | None:
    if value is None:
        return None
    # Whole microseconds divided once, exactly as the columnar evaluator computes it.
    elapsed_us: int = (now - as_utc(value)) // _MICROSECOND
    return elapsed_us / 86_400_000_000.0


def _matches(value: str | None, regex: Any) -> bool | None:
    return None if value is None else regex.search(value) is not None


# The text number() and datetime() accept, the same on both paths (Python's float() and
# fromisoformat() alone accept more: '1_0', ' 5', 'nan', '20240102', week dates).
_NUMBER_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATETIME_TEXT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
_NUMBER_RE = re.compile(_NUMBER_TEXT)
_DATETIME_RE = re.compile(_DATETIME_TEXT)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float(value) if _NUMBER_RE.match(value) else None
    if isinstance(value, bool | int | float):
        return float(value)
    raise TypeError(f"number() cannot take a {type(value).__name__}")


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not _DATETIME_RE.match(value):
            return None
        try:
            return parse_datetime(value).astimezone(UTC)
        except ValueError:  # well-formed but not a date: 2024-02-30, 24:00
            return None
    if isinstance(value, datetime | date):
        result: datetime = as_utc(value)
        return result
    raise TypeError(f"datetime() cannot take a {type(value).__name__}")


def _truths(values: Any) -> list[bool] | None:
    if values is None:
        return None
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise TypeError(f"any() and all() take a list, not a {type(values).__name__}")
    return [bool(value) for value in values if value is not None]


def _any(values: Any) -> bool | None:
    truths = _truths(values)
    return None if truths is None else any(truths)


def _all(values: Any) -> bool | None:
    truths = _truths(values)
    return None if truths is None else all(truths)


# --- column builders ---


def _col_len(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    if types[0] is T.LIST:
        return args[0].list.len().cast(pl.Int64)
    return args[0].str.len_chars().cast(pl.Int64)


def _col_abs(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    if types[0] is T.INTEGER:
        # abs(-2**63) does not fit in Int64: null, as in the row evaluator. Cast first, as
        # for negation (columnar.py): Polars may type integer literals' when/then as Int32.
        wide = args[0].cast(pl.Int64)
        return pl.when(wide != INT64_MIN).then(wide.abs())
    return args[0].abs()


def _epoch_us(expr: pl.Expr) -> pl.Expr:
    # Epoch microseconds treat a naive datetime as UTC and an aware one as its instant, which
    # is what the row evaluator does with as_utc(); comparing epochs sidesteps time zones.
    return expr.dt.epoch("us")


def _col_days_since(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    now_us = (now - _EPOCH) // _MICROSECOND
    return (pl.lit(now_us) - _epoch_us(args[0])).cast(pl.Float64) / 86_400_000_000.0


def _col_round(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    digits = literals[1] if len(literals) > 1 else 0
    return args[0].cast(pl.Float64).round(digits, mode="half_to_even")


def _col_matches(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    # Polars uses Rust's regex crate: linear time like RE2, same syntax for what RE2 accepts.
    return args[0].str.contains(polars_regex(literals[1]), literal=False, strict=True)


def _col_number(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    if types[0] is T.STRING:
        text = args[0]
        parsed = text.cast(pl.Float64, strict=False)
        return pl.when(text.str.contains(_NUMBER_TEXT)).then(parsed)
    return args[0].cast(pl.Float64)


def _col_datetime(
    args: Sequence[pl.Expr], types: Sequence[FieldType], literals: Sequence[Any], now: datetime
) -> pl.Expr:
    if types[0] is T.DATETIME:
        return args[0]
    text = args[0]
    # Every accepted shape rewritten to the full one, then parsed with a single format.
    full = (
        text.str.replace(" ", "T", literal=True)
        .str.replace(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})$", "${1}T00:00")
        .str.replace(r"T([0-9]{2}):([0-9]{2})(Z|[+-]|$)", "T${1}:${2}:00${3}")
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?)$", "${1}+00:00")
    )
    parsed = full.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
    return pl.when(text.str.contains(_DATETIME_TEXT)).then(parsed)


def element_truth(inner: pl.DataType | None) -> pl.Expr:
    element = pl.element()
    if inner is None or inner == pl.Boolean:
        return element
    if inner.is_numeric():
        return element != 0
    if inner == pl.String:
        return element.str.len_chars() > 0
    if isinstance(inner, pl.List | pl.Array):
        return element.list.len() > 0
    return element.is_not_null()


def _spec(**kwargs: Any) -> FunctionSpec:
    return FunctionSpec(**kwargs)


_TABLE = [
    _spec(
        name="len",
        signature="len(value: string | list) -> integer",
        doc="Number of characters of a string, or of items of a list.",
        nulls="null if value is null",
        example="len(name)",
        example_fact={"name": "vm-01"},
        example_result=5,
        returns=T.INTEGER,
        params=(_SIZED,),
        row=_len,
        column=_col_len,
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="abs",
        signature="abs(x: number) -> number",
        doc="Absolute value.",
        nulls="null if x is null",
        example="abs(delta)",
        example_fact={"delta": -3.5},
        example_result=3.5,
        returns=T.NUMBER,
        params=(_NUMBER,),
        row=_abs,
        column=_col_abs,
        min_args=1,
        max_args=1,
        same_type_result=True,
    ),
    _spec(
        name="min",
        signature="min(x: number, y: number, ...) -> number",
        doc="Smallest of two or more numbers.",
        nulls="nulls are skipped; null only if every argument is null (like SQL LEAST)",
        example="min(cpu_avg, cpu_max, 100)",
        example_fact={"cpu_avg": 12.5, "cpu_max": None},
        example_result=12.5,
        returns=T.NUMBER,
        params=(_NUMBER,),
        row=_min,
        column=lambda a, t, k, n: pl.min_horizontal(*a),
        min_args=2,
        max_args=None,
        variadic=True,
        same_type_result=True,
    ),
    _spec(
        name="max",
        signature="max(x: number, y: number, ...) -> number",
        doc="Largest of two or more numbers.",
        nulls="nulls are skipped; null only if every argument is null (like SQL GREATEST)",
        example="max(cpu_avg, 5)",
        example_fact={"cpu_avg": 2.0},
        example_result=5,
        returns=T.NUMBER,
        params=(_NUMBER,),
        row=_max,
        column=lambda a, t, k, n: pl.max_horizontal(*a),
        min_args=2,
        max_args=None,
        variadic=True,
        same_type_result=True,
    ),
    _spec(
        name="round",
        signature="round(x: number, digits: integer literal = 0) -> number",
        doc="x rounded to `digits` decimals, halves to even (as Python and Polars do).",
        nulls="null if x is null",
        example="round(monthly_cost * 0.7, 2)",
        example_fact={"monthly_cost": 100.0},
        example_result=70.0,
        returns=T.NUMBER,
        params=(_NUMBER, frozenset({T.INTEGER})),
        row=_round,
        column=_col_round,
        min_args=1,
        max_args=2,
        literal_args=frozenset({1}),
    ),
    _spec(
        name="lower",
        signature="lower(text: string) -> string",
        doc="text in lower case.",
        nulls="null if text is null",
        example="lower(env) == 'prod'",
        example_fact={"env": "PROD"},
        example_result=True,
        returns=T.STRING,
        params=(_STRING,),
        row=_lower,
        column=lambda a, t, k, n: a[0].str.to_lowercase(),
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="upper",
        signature="upper(text: string) -> string",
        doc="text in upper case.",
        nulls="null if text is null",
        example="upper(region)",
        example_fact={"region": "eu-west-1"},
        example_result="EU-WEST-1",
        returns=T.STRING,
        params=(_STRING,),
        row=_upper,
        column=lambda a, t, k, n: a[0].str.to_uppercase(),
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="startswith",
        signature="startswith(text: string, prefix: string) -> boolean",
        doc="Whether text starts with prefix.",
        nulls="null if either argument is null",
        example="startswith(name, 'tmp-')",
        example_fact={"name": "tmp-build-7"},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_STRING, _STRING),
        row=_startswith,
        column=lambda a, t, k, n: a[0].str.starts_with(a[1]),
        min_args=2,
        max_args=2,
    ),
    _spec(
        name="endswith",
        signature="endswith(text: string, suffix: string) -> boolean",
        doc="Whether text ends with suffix.",
        nulls="null if either argument is null",
        example="endswith(name, '-old')",
        example_fact={"name": "db-old"},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_STRING, _STRING),
        row=_endswith,
        column=lambda a, t, k, n: a[0].str.ends_with(a[1]),
        min_args=2,
        max_args=2,
    ),
    _spec(
        name="contains",
        signature="contains(text: string, part: string) -> boolean",
        doc="Whether part occurs in text (plain text, not a pattern).",
        nulls="null if either argument is null",
        example="contains(description, 'temporary')",
        example_fact={"description": "a temporary test box"},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_STRING, _STRING),
        row=_contains,
        column=lambda a, t, k, n: a[0].str.contains(a[1], literal=True),
        min_args=2,
        max_args=2,
    ),
    _spec(
        name="coalesce",
        signature="coalesce(x, y, ...) -> type of the arguments",
        doc="The first argument that is not null: the way to give a missing field a default.",
        nulls="null only if every argument is null",
        example="coalesce(tags.owner, 'unowned')",
        example_fact={"tags": {"team": "core"}},
        example_result="unowned",
        returns=T.ANY,
        params=(_ANY_TYPE,),
        row=_coalesce,
        column=lambda a, t, k, n: pl.coalesce(*a),
        min_args=1,
        max_args=None,
        variadic=True,
        same_type_result=True,
    ),
    _spec(
        name="now",
        signature="now() -> datetime",
        doc="The evaluation time: fixed once per evaluation call, identical in both evaluators.",
        nulls="never null",
        example="days_since(now()) == 0",
        example_fact={},
        example_result=True,
        returns=T.DATETIME,
        params=(),
        row=_now,
        column=lambda a, t, k, n: pl.lit(n),
        min_args=0,
        max_args=0,
        needs_now=True,
    ),
    _spec(
        name="days_since",
        signature="days_since(t: datetime) -> number",
        doc=(
            "Days (fractional) from t to the evaluation time; negative for a future t. Naive "
            "datetimes are taken as UTC."
        ),
        nulls="null if t is null",
        example="days_since(created_at) > 30",
        example_fact={"created_at": datetime(2000, 1, 1, tzinfo=UTC)},
        example_result=True,
        returns=T.NUMBER,
        params=(_TIME,),
        row=_days_since,
        column=_col_days_since,
        min_args=1,
        max_args=1,
        needs_now=True,
    ),
    _spec(
        name="matches",
        signature="matches(text: string, pattern: string literal) -> boolean",
        doc=(
            "Whether the RE2 regular expression pattern matches anywhere in text (anchor with "
            "^ and $). RE2 runs in linear time: no backreferences or lookaround. The pattern "
            "must be a literal; it is compiled when the expression is."
        ),
        nulls="null if text is null",
        example="matches(name, '^prod-[0-9]+$')",
        example_fact={"name": "prod-42"},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_STRING, frozenset({T.STRING})),
        row=_matches,
        column=_col_matches,
        min_args=2,
        max_args=2,
        literal_args=frozenset({1}),
    ),
]

_TABLE += [
    _spec(
        name="number",
        signature="number(x: string | number | boolean) -> number",
        doc=(
            "x as a number: text such as '12', '-3.5' or '1e6' (no spaces, no 'nan'), true "
            "as 1 and false as 0. Text that is not a number gives null."
        ),
        nulls="null if x is null or is text that is not a number",
        example="number(cost_text) > 100",
        example_fact={"cost_text": "120.50"},
        example_result=True,
        returns=T.NUMBER,
        params=(_CONVERTIBLE,),
        row=_number,
        column=_col_number,
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="datetime",
        signature="datetime(x: string | datetime) -> datetime",
        doc=(
            "x as a datetime: ISO 8601 text 'YYYY-MM-DD', optionally followed by 'THH:MM', "
            "':SS', '.ffffff' and 'Z' or '+HH:MM' (naive means UTC). Other text gives null."
        ),
        nulls="null if x is null or is text that is not such a datetime",
        example="days_since(datetime(created)) > 30",
        example_fact={"created": "2020-01-31T08:00:00Z"},
        example_result=True,
        returns=T.DATETIME,
        params=(frozenset({T.STRING, T.DATETIME, T.ANY}),),
        row=_datetime,
        column=_col_datetime,
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="any",
        signature="any(items: list) -> boolean",
        doc="Whether any item is true by truthiness (0, '' and [] are false); nulls are skipped.",
        nulls="null if items is null; null items are skipped (any([]) is false)",
        example="any(flags)",
        example_fact={"flags": [False, None, True]},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_LIST,),
        row=_any,
        column=lambda a, t, k, n: a[0],  # built by the columnar compiler (element dtype)
        min_args=1,
        max_args=1,
    ),
    _spec(
        name="all",
        signature="all(items: list) -> boolean",
        doc="Whether every item is true by truthiness; nulls are skipped (all([]) is true).",
        nulls="null if items is null; null items are skipped",
        example="all(checks)",
        example_fact={"checks": [1, None, 2]},
        example_result=True,
        returns=T.BOOLEAN,
        params=(_LIST,),
        row=_all,
        column=lambda a, t, k, n: a[0],  # built by the columnar compiler (element dtype)
        min_args=1,
        max_args=1,
    ),
]

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({spec.name: spec for spec in _TABLE})
"""Every function of the expression language, by name."""
