"""The dashboard's queries on SQLite and PostgreSQL: keyset pages cover every row once in
order (ties on the saving included), filters select what SQL says, the overview adds up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.dashboard.queries import (
    SORTS,
    Cursor,
    ListFilters,
    OverviewCache,
    distinct_values,
    list_recommendations,
    load_overview,
    load_sync_health,
)
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations

START = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    upgrade(engine)
    rows = []
    for n in range(157):
        ticketed = n % 3 == 0
        done = n % 6 == 0
        rows.append(
            {
                "fingerprint": f"{n:064d}",
                "rule_id": f"rule-{n % 4}",
                "resource_id": f"r-{n:04d}",
                "account_id": f"acct-{n % 5}",
                "owner": None if n % 7 == 0 else f"team-{n % 3}",
                "status": "implemented" if done else "ticketed" if ticketed else "open",
                # Few distinct savings: most pages break inside a run of equal values.
                "monthly_savings": Decimal(n % 9) * Decimal("10.5"),
                "currency": "USD",
                "first_seen": START + timedelta(days=n % 20),
                "last_seen": START + timedelta(days=30),
                "times_seen": 1,
                "status_changed_at": START,
                "ticketed_at": START + timedelta(days=21) if ticketed else None,
                "ticket_done_at": START + timedelta(days=25) if done else None,
                "implemented_at": START + timedelta(days=28) if done else None,
                "realized_monthly_savings": Decimal(n % 9) * Decimal("9.5") if done else None,
                "version": 1,
            }
        )
    with engine.begin() as connection:
        connection.execute(recommendations.insert(), rows)
    return engine


def _ids(engine: Engine, *clauses: sa.ColumnElement[bool], order: list) -> list[int]:
    with engine.connect() as connection:
        query = sa.select(recommendations.c.id).where(*clauses).order_by(*order)
        return list(connection.execute(query).scalars())


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_pages_visit_every_row_once_in_order_both_ways(seeded: Engine, sort: str) -> None:
    rec = recommendations.c
    filters = ListFilters(sort=sort, size=10, status="ticketed")
    column, descending = rec[SORTS[sort][0]], SORTS[sort][1]
    order = [column.desc(), rec.id.desc()] if descending else [column.asc(), rec.id.asc()]
    expected = _ids(seeded, rec.status == "ticketed", order=order)
    seen: list[int] = []
    pages = []
    cursor: Cursor | None = None
    while True:
        page = list_recommendations(seeded, filters, cursor)
        assert page.total == len(expected)
        pages.append([row.id for row in page.rows])
        seen += pages[-1]
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert seen == expected
    # Back from the last page, page by page, to the first.
    cursor = Cursor.decode(page.previous.encode()) if page.previous else None
    for earlier in reversed(pages[:-1]):
        assert cursor is not None
        back = list_recommendations(seeded, filters, cursor)
        assert [row.id for row in back.rows] == earlier
        cursor = back.previous
    assert cursor is None


def test_filters_and_prefix_search(seeded: Engine) -> None:
    rec = recommendations.c
    page = list_recommendations(seeded, ListFilters(owner="team-1", rule="rule-2", size=200), None)
    expected = _ids(seeded, rec.owner == "team-1", rec.rule_id == "rule-2", order=[rec.id])
    assert sorted(row.id for row in page.rows) == expected
    page = list_recommendations(seeded, ListFilters(resource="r-01", size=200), None)
    assert sorted(row.resource_id for row in page.rows) == [f"r-01{n:02d}" for n in range(57)]
    # LIKE wildcards typed by the user match themselves.
    assert list_recommendations(seeded, ListFilters(resource="r-%"), None).total == 0


def test_distinct_values_and_overview(seeded: Engine) -> None:
    assert distinct_values(seeded, "owner") == ["team-0", "team-1", "team-2"]
    assert distinct_values(seeded, "rule_id") == [f"rule-{n}" for n in range(4)]
    overview = load_overview(seeded)
    rec = recommendations.c
    with seeded.connect() as connection:
        found, realized, ticketed = connection.execute(
            sa.select(
                sa.func.sum(rec.monthly_savings),
                sa.func.sum(rec.realized_monthly_savings),
                sa.func.count(rec.ticketed_at),
            )
        ).one()
    assert overview.currency == "USD"
    assert overview.total.count == 157
    assert overview.total.found == pytest.approx(float(found))
    assert overview.total.realized == pytest.approx(float(realized))
    assert overview.total.ticketed_count == ticketed
    assert sum(v[0] for v in overview.by_day.values()) == pytest.approx(float(found))
    assert sum(v[3] for v in overview.by_day.values()) == pytest.approx(float(realized))
    assert sum(count for count, _ in overview.by_status.values()) == 157
    assert {row.key for row in overview.by_rule} == {f"rule-{n}" for n in range(4)}


def test_sync_health_of_an_empty_sync(seeded: Engine) -> None:
    health = load_sync_health(seeded)
    assert health.has_tables
    assert health.cursors == []
    assert health.tickets_by_state == {}


def test_a_forged_cursor_is_refused() -> None:
    assert Cursor.decode("garbage") is None
    assert Cursor.decode(Cursor({"a": 1}, 1).encode()) is None  # type: ignore[arg-type]
    assert Cursor.decode(Cursor("1.5", 3, True).encode()) == Cursor("1.5", 3, True)


def test_overview_cache_serves_the_last_overview_and_refreshes_it(seeded: Engine) -> None:
    cache = OverviewCache(seeded, ttl=3600)
    first = cache.get()
    assert first.total.count == 157
    with seeded.begin() as connection:
        connection.execute(sa.delete(recommendations).where(recommendations.c.id <= 7))
    # Within its time to live the same overview is served; fresh=1 recomputes it.
    assert cache.get() is first
    assert cache.get(fresh=True).total.count == 150
    # Once stale, a request still gets the last overview at once, and the next one is
    # computed by a background thread.
    stale = OverviewCache(seeded, ttl=0.01)
    before = stale.get()
    with seeded.begin() as connection:
        connection.execute(sa.delete(recommendations).where(recommendations.c.id <= 17))
    deadline = time.monotonic() + 30
    while stale.get().total.count != 140:
        assert time.monotonic() < deadline, "the overview was never refreshed"
        time.sleep(0.02)
    stale.wait()
    assert before.total.count == 150
