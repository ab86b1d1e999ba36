"""Storing realized savings: which implemented recommendations to measure, and their figures.

The figures themselves come from :func:`reclaim.recommend.savings.realized_savings`; this
module reads its input from ``recommendations`` and writes its output back, inside a run's
transaction.
"""

from __future__ import annotations

__all__ = ["load_implemented", "record_realized"]

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reclaim.recommend.lifecycle import Status
from reclaim.recommend.overlap import ACTION_RANKS
from reclaim.recommend.savings import COUNTED_ONCE, FINAL_REALIZED_METHODS
from reclaim.store.tables.recommend import MONEY, UtcDateTime, recommendations


def record_realized(connection: Connection, figures: pl.DataFrame, now: datetime) -> int:
    """Store realized savings: ``figures`` has id, realized_monthly_savings, realized_method."""
    if figures.height == 0:
        return 0
    params = [
        {
            "rid": row_id,
            "saved": None if saved is None else Decimal(str(round(saved, 4))),
            "method": method,
            "checked": now,
        }
        for row_id, saved, method in figures.select(
            "id", "realized_monthly_savings", "realized_method"
        ).iter_rows()
    ]
    statement = (
        recommendations.update()
        .where(recommendations.c.id == sa.bindparam("rid"))
        .values(
            realized_monthly_savings=sa.bindparam("saved", type_=MONEY),
            realized_method=sa.bindparam("method"),
            realized_checked_at=sa.bindparam("checked", type_=UtcDateTime()),
        )
    )
    connection.execute(statement, params)
    return len(params)


def load_implemented(connection: Connection, rule_ids: Sequence[str]) -> pl.DataFrame:
    """Implemented recommendations of these rules whose realized savings are not final yet.

    A figure from a whole 30-day window after the work, or from the resource leaving the
    bill, is final; measuring those again every week would only grow the run's work. The
    other implemented recommendations of the same resources come too (``measure`` false),
    so that a resource's figure is held by one recommendation only.
    """
    rec = recommendations.c
    not_final = sa.or_(
        rec.realized_method.is_(None),
        rec.realized_method.not_in(list(FINAL_REALIZED_METHODS)),
    )
    implemented = sa.and_(rec.status == Status.IMPLEMENTED.value, rec.rule_id.in_(list(rule_ids)))
    pending_resources = sa.select(rec.resource_id).where(implemented, not_final)
    rows = connection.execute(
        sa.select(
            rec.id,
            rec.resource_id,
            rec.account_id,
            rec.cost_30d,
            rec.implemented_at,
            rec.params,
            rec.monthly_savings,
            rec.realized_method,
        ).where(implemented, rec.resource_id.in_(pending_resources))
    ).all()
    final = set(FINAL_REALIZED_METHODS)
    return pl.DataFrame(
        [
            (
                r[0],
                r[1],
                r[2],
                None if r[3] is None else float(r[3]),
                r[4],
                ACTION_RANKS.get(str((r[5] or {}).get("type")), 2),
                float(r[6] or 0),
                r[7] is not None and r[7] != COUNTED_ONCE,
                r[7] not in final,
            )
            for r in rows
        ],
        schema={
            "id": pl.Int64,
            "resource_id": pl.String,
            "account_id": pl.String,
            "cost_before": pl.Float64,
            "implemented_at": pl.Datetime("us", "UTC"),
            "rank": pl.Int64,
            "monthly_savings": pl.Float64,
            "holds": pl.Boolean,
            "measure": pl.Boolean,
        },
        orient="row",
    )
