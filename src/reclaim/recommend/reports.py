"""Reading recommendations for people: filters, totals, a full export, realized savings by month.

Every total here is a sum of ``monthly_savings`` (or ``realized_monthly_savings``) per currency:
a bill in EUR and one in USD are never added up. Because a resource's saving is held by one
recommendation only (the others are superseded with 0, see :mod:`reclaim.recommend.overlap`),
these sums count each resource once.
"""

from __future__ import annotations

__all__ = [
    "TOTAL_KEYS",
    "Filters",
    "RealizedRow",
    "Total",
    "iter_records",
    "realized_by_owner_and_month",
    "recommendation_filters",
    "totals",
]

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.recommend.lifecycle import Status
from reclaim.recommend.records import RecommendationRecord, record_of
from reclaim.recommend.savings import COUNTED_ONCE
from reclaim.store.tables.recommend import recommendations

_CENT: Final = Decimal("0.01")


def recommendation_filters(
    *,
    statuses: Sequence[Status] | None = None,
    rule_id: str | None = None,
    account_id: str | None = None,
    owner: str | None = None,
    region: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses on ``recommendations`` for the filters given (None: no filter)."""
    rec = recommendations.c
    clauses: list[sa.ColumnElement[bool]] = []
    if statuses:
        clauses.append(rec.status.in_([status.value for status in statuses]))
    for column, value in (
        (rec.rule_id, rule_id),
        (rec.account_id, account_id),
        (rec.owner, owner),
        (rec.region, region),
    ):
        if value is not None:
            clauses.append(column == value)
    return clauses


@dataclass(frozen=True)
class Filters:
    """Which recommendations a report covers; a field left None does not filter."""

    statuses: tuple[Status, ...] = field(default_factory=tuple)
    rule_id: str | None = None
    account_id: str | None = None
    owner: str | None = None
    region: str | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        return recommendation_filters(
            statuses=self.statuses,
            rule_id=self.rule_id,
            account_id=self.account_id,
            owner=self.owner,
            region=self.region,
        )


TOTAL_KEYS: Final = {
    "status": recommendations.c.status,
    "owner": recommendations.c.owner,
    "account": recommendations.c.account_id,
    "rule": recommendations.c.rule_id,
    "region": recommendations.c.region,
}
"""What :func:`totals` can group by."""


@dataclass(frozen=True)
class Total:
    """One group of a total: its key (None: no value), currency, count and monthly savings."""

    key: str | None
    currency: str | None
    count: int
    monthly_savings: Decimal


def totals(engine: Engine, by: str, filters: Filters | None = None) -> list[Total]:
    """Monthly savings per ``by`` (a key of ``TOTAL_KEYS``) and currency, biggest first."""
    if by not in TOTAL_KEYS:
        raise ValueError(f"cannot total by {by!r}; use one of {sorted(TOTAL_KEYS)}")
    key = TOTAL_KEYS[by]
    rec = recommendations.c
    saved = sa.func.coalesce(sa.func.sum(rec.monthly_savings), 0)
    query = (
        sa.select(key, rec.currency, sa.func.count(), saved)
        .where(*(filters or Filters()).clauses())
        .group_by(key, rec.currency)
    )
    with engine.connect() as connection:
        rows = [
            Total(
                None if value is None else str(value),
                currency,
                int(count),
                Decimal(str(total)).quantize(_CENT),
            )
            for value, currency, count, total in connection.execute(query)
        ]
    return sorted(rows, key=lambda row: (-row.monthly_savings, row.key or "", row.currency or ""))


def iter_records(
    engine: Engine, filters: Filters | None = None, *, batch: int = 5_000
) -> Iterator[RecommendationRecord]:
    """Every recommendation the filters select, by id, read ``batch`` rows at a time.

    Pages by id (keyset), so an export of a million rows neither holds them all in memory nor
    rescans what it has already read.
    """
    rec = recommendations.c
    clauses = (filters or Filters()).clauses()
    last_id = -1
    while True:
        query = (
            sa.select(recommendations)
            .where(*clauses, rec.id > last_id)
            .order_by(rec.id)
            .limit(batch)
        )
        with engine.connect() as connection:
            records = [record_of(row) for row in connection.execute(query)]
        yield from records
        if len(records) < batch:
            return
        last_id = records[-1].id


@dataclass(frozen=True)
class RealizedRow:
    """Realized savings of one owner's work implemented in one month (``YYYY-MM``)."""

    owner: str | None
    month: str
    currency: str | None
    implemented: int
    realized_monthly_savings: Decimal


def realized_by_owner_and_month(
    engine: Engine, filters: Filters | None = None
) -> list[RealizedRow]:
    """Measured savings of implemented recommendations, per owner, month and currency.

    The month is that of ``implemented_at``, the end of the data that showed the work done.
    Recommendations whose resource's figure another one holds are not counted again.
    """
    rec = recommendations.c
    query = sa.select(
        rec.owner, rec.currency, rec.implemented_at, rec.realized_monthly_savings
    ).where(
        *(filters or Filters()).clauses(),
        rec.status == Status.IMPLEMENTED.value,
        rec.implemented_at.is_not(None),
        rec.realized_monthly_savings.is_not(None),
        sa.or_(rec.realized_method.is_(None), rec.realized_method != COUNTED_ONCE),
    )
    groups: dict[tuple[str | None, str, str | None], tuple[int, Decimal]] = {}
    with engine.connect() as connection:
        for owner, currency, implemented_at, saved in connection.execute(query):
            key = (owner, implemented_at.strftime("%Y-%m"), currency)
            count, total = groups.get(key, (0, Decimal(0)))
            groups[key] = (count + 1, total + Decimal(str(saved)))
    return [
        RealizedRow(owner, month, currency, count, total.quantize(_CENT))
        for (owner, month, currency), (count, total) in sorted(
            groups.items(), key=lambda item: (item[0][1], item[0][0] or "", item[0][2] or "")
        )
    ]
