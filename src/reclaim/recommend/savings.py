"""Realized savings: what implemented recommendations really saved, read from later bills.

A recommendation stores the resource's 30-day cost as last seen before the work
(``cost_30d``). Once it is ``implemented``, each later run compares that with what the bill
says now, per resource:

- the resource is billed and the whole 30-day window lies after the work:
  ``cost before - cost_30d now``, method ``30-day actual after``;
- the resource is billed and at least the last 7 days lie after the work:
  ``cost before - cost_7d * 30/7``, method ``7-day run rate after``;
- the resource is no longer in the bill of an account the run covers: the whole cost before
  is saved, method ``gone from the bill``;
- otherwise (the work is too recent) nothing is recorded yet.

A negative figure is kept: the change made things dearer, and the report should say so.
"""

from __future__ import annotations

__all__ = ["FINAL_REALIZED_METHODS", "REALIZED_COLUMNS", "realized_savings"]

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

import polars as pl

REALIZED_COLUMNS: Final = ("id", "realized_monthly_savings", "realized_method")

FULL_WINDOW: Final = "30-day actual after"
RUN_RATE: Final = "7-day run rate after"
GONE: Final = "gone from the bill"
FINAL_REALIZED_METHODS: Final = (FULL_WINDOW, GONE)
"""Methods whose figure no later bill changes; these recommendations are not measured again."""

_TIME = pl.Datetime("us", "UTC")


def realized_savings(
    implemented: pl.DataFrame,
    facts: pl.DataFrame,
    *,
    accounts: Collection[str | None] | None,
    now: datetime,
) -> pl.DataFrame:
    """Realized monthly savings of ``implemented`` recommendations, from this run's ``facts``.

    ``implemented`` has id, resource_id, account_id, cost_before, implemented_at; ``facts``
    needs resource_id and may have account_id, cost_30d, cost_7d, as_of, in_bill. ``accounts``
    are the accounts the facts cover (None: all). Returns ``REALIZED_COLUMNS`` for the
    recommendations that can be measured now.
    """
    empty = pl.DataFrame(
        schema={
            "id": pl.Int64,
            "realized_monthly_savings": pl.Float64,
            "realized_method": pl.String,
        }
    )
    if implemented.height == 0 or "resource_id" not in facts.columns:
        return empty

    def column(name: str, dtype: pl.DataType) -> pl.Expr:
        if name in facts.columns:
            return pl.col(name).cast(dtype)
        return pl.lit(None, dtype=dtype).alias(name)

    billed = facts.select(
        pl.col("resource_id").cast(pl.String),
        column("account_id", pl.String()),
        column("cost_30d", pl.Float64()).alias("cost_now_30d"),
        column("cost_7d", pl.Float64()).alias("cost_now_7d"),
        column("as_of", _TIME).alias("as_of"),
        column("in_bill", pl.Boolean()).alias("in_bill"),
    )
    if billed.select(pl.col("in_bill").fill_null(False).any()).item() is False:
        # Facts without any billing data (inventory only) say nothing about cost.
        return empty
    as_of_all = billed.select(pl.col("as_of").max()).item() or now
    joined = implemented.join(
        billed, on=["resource_id", "account_id"], how="left", nulls_equal=True
    )
    as_of = pl.coalesce(pl.col("as_of"), pl.lit(as_of_all, dtype=_TIME))
    present = pl.col("in_bill").fill_null(False)
    if accounts is None:
        covered = pl.lit(True)
    else:
        named = [account for account in accounts if account is not None]
        covered = pl.col("account_id").is_in(named).fill_null(False)
        if None in accounts:
            covered = covered | pl.col("account_id").is_null()
    full_window = pl.col("implemented_at") <= as_of - timedelta(days=30)
    week_window = pl.col("implemented_at") <= as_of - timedelta(days=7)
    cost_after = (
        pl.when(present & full_window)
        .then(pl.col("cost_now_30d"))
        .when(present & week_window)
        .then(pl.col("cost_now_7d") * (30.0 / 7.0))
        .when(~present & covered)
        .then(pl.lit(0.0))
    )
    method = (
        pl.when(present & full_window)
        .then(pl.lit(FULL_WINDOW))
        .when(present & week_window)
        .then(pl.lit(RUN_RATE))
        .when(~present & covered)
        .then(pl.lit(GONE))
    )
    result = joined.select(
        pl.col("id"),
        (pl.col("cost_before").fill_null(0.0) - cost_after)
        .round(4)
        .alias("realized_monthly_savings"),
        method.alias("realized_method"),
    )
    return result.filter(pl.col("realized_method").is_not_null())
