"""Polars expressions that read messy text into typed values, and say when they could not.

Every parser takes a column that may be text (CSV, JSON) or already typed (Parquet) and returns
the typed value, null where the input was empty or unreadable. ``unreadable`` tells the two
apart, so an unreadable value becomes a reported bad row instead of a silent null.
"""

from __future__ import annotations

__all__ = [
    "NULL_STRINGS",
    "clean_text",
    "find_column",
    "parse_bool",
    "parse_number",
    "parse_time",
    "unreadable",
    "unreadable_number",
]

from collections.abc import Iterable

import polars as pl

from reclaim.ingest.facts import UTC_TIME

NULL_STRINGS = ("NULL", "null", "Null", "None", "none", "NaN", "nan", "N/A", "n/a", "")
"""Text that means "no value" in provider exports (FOCUS samples carry literal ``NULL``)."""

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def find_column(columns: Iterable[str], *names: str) -> str | None:
    """The actual name of the first of ``names`` present, compared without case."""
    by_lower = {column.lower(): column for column in columns}
    for name in names:
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    return None


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Text with surrounding blanks removed; the null spellings become null."""
    text = expr.cast(pl.String).str.strip_chars()
    return pl.when(text.is_in(NULL_STRINGS)).then(None).otherwise(text)


def parse_number(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A finite number, else null.

    A comma is never read: ``1,50`` is 1.5 in a decimal-comma locale and 150 with a thousands
    separator, and guessing wrong multiplies money by a hundred. ``inf``, ``-Infinity`` and
    ``1e400`` (which overflows to infinity) are not amounts either; ``unreadable`` reports both.
    """
    number = expr.cast(pl.Float64) if dtype.is_numeric() else _text_number(expr)
    return pl.when(number.is_finite()).then(number).otherwise(None)


def _text_number(expr: pl.Expr) -> pl.Expr:
    text = clean_text(expr)
    return (
        pl.when(text.str.contains(",", literal=True))
        .then(None)
        .otherwise(text.cast(pl.Float64, strict=False))
    )


def parse_bool(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return expr
    if dtype.is_numeric():
        return expr != 0
    text = clean_text(expr).str.to_lowercase()
    return (
        pl.when(text.is_in(_TRUE))
        .then(pl.lit(True))
        .when(text.is_in(_FALSE))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def parse_time(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """ISO 8601 with or without ``T``, fraction, ``Z`` or offset; a time without zone is UTC.

    FOCUS says timestamps are UTC; many exports still write them without a zone.
    """
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.dt.replace_time_zone("UTC").cast(UTC_TIME)
        return expr.dt.convert_time_zone("UTC").cast(UTC_TIME)
    if isinstance(dtype, pl.Date):
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    # Literal edits and fixed formats only: a regex per value made this the slowest step of
    # reading a CSV export. ``%#z`` takes +hh, +hhmm and +hh:mm.
    text = (
        clean_text(expr)
        .str.replace("T", " ", literal=True)
        .str.strip_suffix("Z")
        .str.strip_suffix("z")
    )
    naive = pl.coalesce(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False),
        text.str.to_datetime("%Y-%m-%d %H:%M", strict=False),
        text.str.to_datetime("%Y-%m-%d", strict=False),
    ).dt.replace_time_zone("UTC")
    return pl.coalesce(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", strict=False, time_zone="UTC"),
        naive,
    ).cast(UTC_TIME)


def unreadable(raw: pl.Expr, parsed: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """True where the input held a value that the parser could not read."""
    if dtype == pl.String:
        return clean_text(raw).is_not_null() & parsed.is_null()
    return raw.is_not_null() & parsed.is_null()


def unreadable_number(raw: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Why a number could not be read: (has a comma, not finite, other), each a condition.

    Meant to be read beside ``unreadable``: the three are disjoint, and together they are
    ``unreadable`` for a number column.
    """
    if dtype.is_numeric():
        value = raw.cast(pl.Float64)
        never = pl.lit(False)
        return never, value.is_not_null() & ~value.is_finite(), never
    text = clean_text(raw)
    comma = text.str.contains(",", literal=True)
    value = text.cast(pl.Float64, strict=False)
    infinite = ~comma & value.is_not_null() & ~value.is_finite()
    other = text.is_not_null() & ~comma & value.is_null()
    return comma, infinite, other
