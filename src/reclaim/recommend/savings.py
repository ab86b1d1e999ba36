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

The figure is the resource's, not the rule's: when several implemented recommendations name one
resource (idle-vm and previous-generation on a VM that was terminated), only one of them holds
the figure, the others record 0 with method ``counted once on the resource``. The holder is
the one that already holds it, else the dominant action (see :mod:`reclaim.recommend.overlap`).

Times are the data's: ``implemented_at`` is the end of the data (``as_of``) of the run that saw
the work done, and the windows are measured back from the ``as_of`` of the facts, so neither
the wall clock of a run nor the time it is run at matters.
"""

from __future__ import annotations

__all__ = [
    "COUNTED_ONCE",
    "FINAL_REALIZED_METHODS",
    "REALIZED_COLUMNS",
    "realized_savings",
]

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

import polars as pl

REALIZED_COLUMNS: Final = ("id", "realized_monthly_savings", "realized_method")

FULL_WINDOW: Final = "30-day actual after"
RUN_RATE: Final = "7-day run rate after"
GONE: Final = "gone from the bill"
COUNTED_ONCE: Final = "counted once on the resource"
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

    ``implemented`` has id, resource_id, account_id, cost_before, implemented_at, and may
    have ``rank`` (class of the action, see ``overlap.ACTION_RANKS``), ``monthly_savings``,
    ``holds`` (already holds the resource's figure) and ``measure`` (false: only there so the
    figure is counted once; no result row). ``facts`` needs resource_id and may have
    account_id, cost_30d, cost_7d, as_of, in_bill. ``accounts`` are the accounts the facts
    cover (None: all). ``now`` is used only when the facts carry no ``as_of``. Returns
    ``REALIZED_COLUMNS`` for the recommendations that can be measured now.
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

    def optional(name: str, default: object, dtype: pl.DataType) -> pl.Expr:
        if name in implemented.columns:
            return pl.col(name).cast(dtype).fill_null(pl.lit(default, dtype=dtype))
        return pl.lit(default, dtype=dtype)

    # One holder of the figure per resource: whoever holds it already, else the dominant action.
    holder_order = joined.with_columns(
        optional("holds", False, pl.Boolean()).alias("_holds"),
        optional("rank", 2, pl.Int64()).alias("_rank"),
        optional("monthly_savings", 0.0, pl.Float64()).alias("_savings"),
        optional("measure", True, pl.Boolean()).alias("_measure"),
    ).sort(["_holds", "_rank", "_savings", "id"], descending=[True, True, True, False])
    holders = holder_order.unique(
        subset=["resource_id", "account_id"], keep="first", maintain_order=True
    ).select("resource_id", "account_id", pl.col("id").alias("_holder"))
    ranked = holder_order.join(
        holders, on=["resource_id", "account_id"], how="left", nulls_equal=True
    )
    holds = pl.col("id") == pl.col("_holder")
    result = ranked.filter(pl.col("_measure")).select(
        pl.col("id"),
        pl.when(holds)
        .then((pl.col("cost_before").fill_null(0.0) - cost_after).round(4))
        .otherwise(pl.lit(0.0))
        .alias("realized_monthly_savings"),
        pl.when(holds).then(method).otherwise(pl.lit(COUNTED_ONCE)).alias("realized_method"),
    )
    return result.filter(pl.col("realized_method").is_not_null()).sort("id")
