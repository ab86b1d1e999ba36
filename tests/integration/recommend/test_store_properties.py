"""Any sequence of runs on the real store keeps one row per fingerprint (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from reclaim.recommend import RecommendationStore, Scope, fingerprint, record_run
from reclaim.recommend.reconcile import MATCH_COLUMNS
from reclaim.store import upgrade
from reclaim.store.tables.recommend import observations, recommendation_runs, recommendations

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEYS = [
    (r, f"res-{i}", a) for r in ("idle-vm", "old-snapshot") for i in range(5) for a in ("1", None)
]
SCOPE = Scope(frozenset({"idle-vm", "old-snapshot"}))


def matches(keys: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "fingerprint": fingerprint(*key),
                "rule_id": key[0],
                "resource_id": key[1],
                "account_id": key[2],
                "monthly_savings": 1.25,
                "params": "{}",
            }
            for key in keys
        ],
        schema={**MATCH_COLUMNS},
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.lists(st.sampled_from(KEYS), max_size=10), min_size=1, max_size=5))
def test_runs_keep_one_row_per_fingerprint(
    engine: Engine, runs: list[list[tuple[str, str, str | None]]]
) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        for table in (observations, recommendations, recommendation_runs):
            connection.execute(table.delete())
    store = RecommendationStore(engine)
    seen: dict[str, int] = {}
    for index, keys in enumerate(runs):
        record_run(
            store, matches(keys), scope=SCOPE, run_id=f"r{index}", now=T0 + timedelta(days=index)
        )
        for key in set(keys):
            seen[fingerprint(*key)] = seen.get(fingerprint(*key), 0) + 1
        # A retried run changes nothing.
        record_run(store, matches(keys), scope=SCOPE, run_id=f"r{index}")
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                sa.select(recommendations.c.fingerprint, recommendations.c.times_seen)
            ).all()
        )
        observed = connection.execute(
            sa.select(sa.func.count()).select_from(observations)
        ).scalar_one()
    assert stored == seen
    assert observed == sum(seen.values())
