"""One saving per resource: the dominant action keeps it, the others are superseded."""

from __future__ import annotations

import json

import polars as pl

from reclaim.recommend.overlap import supersede
from reclaim.recommend.reconcile import MATCH_COLUMNS


def matches(*rows: tuple[str, str, str | None, str, float]) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            {
                "fingerprint": f"{rule}/{resource}",
                "rule_id": rule,
                "resource_id": resource,
                "account_id": account,
                "action": action,
                "monthly_savings": savings,
                "savings_method": "30-day actual",
                "cost_30d": 150.0,
                "params": json.dumps({"type": action}),
            }
            for rule, resource, account, action, savings in rows
        ]
    )
    return frame.select(
        [
            pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in MATCH_COLUMNS.items()
        ]
    )


def test_terminate_beats_resize_beats_modernize_per_resource() -> None:
    result = supersede(
        matches(
            ("previous-generation-instance", "i-1", "1", "modernize", 15.0),
            ("idle-vm", "i-1", "1", "stop", 150.0),
            ("unowned-resource", "i-1", "1", "tag", 0.0),
            ("previous-generation-instance", "i-2", "1", "modernize", 15.0),
            ("vm-rightsize", "i-2", "1", "rightsize", 75.0),
            # Same resource id in another account: a different resource.
            ("previous-generation-instance", "i-1", "2", "modernize", 15.0),
        )
    )
    rows = result.rows(named=True)
    assert [row["monthly_savings"] for row in rows] == [0.0, 150.0, 0.0, 0.0, 75.0, 15.0]
    assert rows[0]["savings_method"] == "superseded by idle-vm"
    assert json.loads(rows[0]["params"]) == {
        "superseded_by": "idle-vm",
        "savings_alone": 15.0,
        "type": "modernize",
    }
    assert rows[2]["savings_method"] == "30-day actual"  # governance is not superseded
    assert rows[3]["savings_method"] == "superseded by vm-rightsize"
    assert result.columns == list(MATCH_COLUMNS)


def test_within_one_class_the_larger_saving_wins_and_empty_params_stay_valid() -> None:
    frame = matches(
        ("graviton", "i-1", None, "modernize", 20.0),
        ("previous-generation-instance", "i-1", None, "modernize", 5.0),
    ).with_columns(pl.lit("{}").alias("params"))
    rows = supersede(frame).rows(named=True)
    assert [row["monthly_savings"] for row in rows] == [20.0, 0.0]
    assert json.loads(rows[1]["params"]) == {"superseded_by": "graviton", "savings_alone": 5.0}
