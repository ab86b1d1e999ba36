from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from reclaim.recommend.savings import realized_savings

AS_OF = datetime(2026, 11, 27, tzinfo=UTC)
TIME = pl.Datetime("us", "UTC")


def implemented(*rows: tuple[int, str, str | None, float, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "id": pl.Int64,
            "resource_id": pl.String,
            "account_id": pl.String,
            "cost_before": pl.Float64,
            "implemented_at": TIME,
        },
        orient="row",
    )


def facts(*rows: tuple[str, str | None, float, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [(*row, AS_OF, True) for row in rows],
        schema={
            "resource_id": pl.String,
            "account_id": pl.String,
            "cost_30d": pl.Float64,
            "cost_7d": pl.Float64,
            "as_of": TIME,
            "in_bill": pl.Boolean,
        },
        orient="row",
    )


def as_dict(frame: pl.DataFrame) -> dict[int, tuple[float, str]]:
    return {
        row["id"]: (row["realized_monthly_savings"], row["realized_method"])
        for row in frame.iter_rows(named=True)
    }


def test_full_window_after_the_work_compares_30_day_costs() -> None:
    result = realized_savings(
        implemented((1, "i-1", "111", 100.0, AS_OF - timedelta(days=40))),
        facts(("i-1", "111", 40.0, 9.0), ("other", "111", 5.0, 1.0)),
        accounts={"111"},
        now=AS_OF,
    )
    assert as_dict(result) == {1: (60.0, "30-day actual after")}


def test_recent_work_uses_the_7_day_run_rate_or_waits() -> None:
    result = realized_savings(
        implemented(
            (1, "i-1", "111", 100.0, AS_OF - timedelta(days=10)),
            (2, "i-2", "111", 100.0, AS_OF - timedelta(days=2)),
        ),
        facts(("i-1", "111", 80.0, 7.0), ("i-2", "111", 90.0, 20.0)),
        accounts={"111"},
        now=AS_OF,
    )
    assert as_dict(result) == {1: (70.0, "7-day run rate after")}


def test_a_resource_gone_from_a_covered_bill_saved_everything() -> None:
    rows = implemented(
        (1, "vol-1", "111", 8.0, AS_OF - timedelta(days=1)),
        (2, "vol-2", "222", 8.0, AS_OF - timedelta(days=1)),
        (3, "vol-3", None, 4.0, AS_OF - timedelta(days=1)),
    )
    result = realized_savings(
        rows, facts(("x", "111", 1.0, 1.0)), accounts={"111", None}, now=AS_OF
    )
    assert as_dict(result) == {1: (8.0, "gone from the bill"), 3: (4.0, "gone from the bill")}


def test_a_change_that_made_things_dearer_is_reported_negative() -> None:
    result = realized_savings(
        implemented((1, "i-1", "111", 50.0, AS_OF - timedelta(days=31))),
        facts(("i-1", "111", 65.0, 15.0)),
        accounts=None,
        now=AS_OF,
    )
    assert as_dict(result) == {1: (-15.0, "30-day actual after")}


def test_facts_without_billing_say_nothing() -> None:
    inventory_only = facts(("i-1", "111", 0.0, 0.0)).with_columns(pl.lit(False).alias("in_bill"))
    result = realized_savings(
        implemented((1, "i-9", "111", 50.0, AS_OF - timedelta(days=31))),
        inventory_only,
        accounts=None,
        now=AS_OF,
    )
    assert result.height == 0


def test_one_resource_realizes_its_saving_once_on_the_dominant_action() -> None:
    rows = implemented(
        (1, "i-1", "111", 150.0, AS_OF - timedelta(days=1)),
        (2, "i-1", "111", 150.0, AS_OF - timedelta(days=1)),
        (3, "i-2", "111", 80.0, AS_OF - timedelta(days=1)),
    ).with_columns(
        pl.Series("rank", [1, 3, 2]),
        pl.Series("monthly_savings", [15.0, 150.0, 40.0]),
    )
    result = realized_savings(rows, facts(("x", "111", 1.0, 1.0)), accounts={"111"}, now=AS_OF)
    assert as_dict(result) == {
        1: (0.0, "counted once on the resource"),
        2: (150.0, "gone from the bill"),
        3: (80.0, "gone from the bill"),
    }


def test_a_figure_already_held_stays_with_its_holder() -> None:
    rows = implemented(
        (1, "i-1", "111", 150.0, AS_OF - timedelta(days=60)),
        (2, "i-1", "111", 150.0, AS_OF - timedelta(days=1)),
    ).with_columns(
        pl.Series("rank", [1, 3]),
        pl.Series("holds", [True, False]),
        pl.Series("measure", [False, True]),
    )
    result = realized_savings(rows, facts(("x", "111", 1.0, 1.0)), accounts={"111"}, now=AS_OF)
    assert as_dict(result) == {2: (0.0, "counted once on the resource")}
