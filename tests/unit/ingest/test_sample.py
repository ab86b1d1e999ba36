from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import (
    BUNDLED_SAMPLE,
    SAMPLE_END,
    bundled_sample,
    collect_facts,
    generate_sample,
    validate_facts,
)

# One predicate per kind of waste the generator promises (the savings pack's rules, in facts).
WASTE = {
    "idle vm": (pl.col("kind") == "vm") & (pl.col("state") == "running") & (pl.col("cpu_p95") < 5),
    "oversized vm": (pl.col("kind") == "vm")
    & (pl.col("cpu_p95").is_between(5, 40))
    & (pl.col("mem_p95") < 40),
    "previous generation": pl.col("previous_generation").fill_null(False),
    "stopped with volumes": (pl.col("state") == "stopped")
    & (pl.col("days_in_state") > 30)
    & (pl.col("attached_volume_count") > 0),
    "unattached volume": (pl.col("kind") == "volume") & (pl.col("days_since_attached") > 30),
    "gp2": pl.col("volume_type") == "gp2",
    "old snapshot": (pl.col("kind") == "snapshot") & (pl.col("age_days") > 180),
    "free ip": (pl.col("kind") == "ip_address") & ~pl.col("attached"),
    "idle load balancer": (pl.col("kind") == "load_balancer") & (pl.col("requests_sum") == 0),
    "idle database": (pl.col("kind") == "database") & (pl.col("connections_max") == 0),
    "unowned": pl.col("owner").is_null(),
    "no lifecycle": (pl.col("kind") == "bucket") & ~pl.col("lifecycle_policy"),
    "io1 IOPS far above peak": (pl.col("volume_type") == "io1")
    & (pl.col("provisioned_iops") > 2 * pl.col("iops_max"))
    & (pl.col("iops_cost_30d") > 0),
    "gp3 IOPS far above peak": (pl.col("volume_type") == "gp3")
    & (pl.col("provisioned_iops") > 3000)
    & (pl.col("provisioned_iops") > 2 * pl.col("iops_max")),
    "under-used savings plan": (pl.col("kind") == "commitment")
    & (
        pl.col("commitment_used_30d")
        / (pl.col("commitment_used_30d") + pl.col("commitment_unused_30d"))
        < 0.9
    ),
    "windows vm": pl.col("platform") == "windows",
}


@pytest.mark.parametrize("resources", [30, 400])
def test_every_kind_of_waste_is_present(tmp_path: Path, resources: int) -> None:
    files = generate_sample(tmp_path, resources=resources, days=35, seed=3)
    facts = collect_facts([files.billing], [files.inventory], [files.utilization]).facts
    validate_facts(facts)
    # Commitments are billing entities beyond the estate's resources: one Savings Plan here.
    assert facts.filter(pl.col("kind") != "commitment").height == resources
    assert facts.filter(pl.col("kind") == "commitment").height == 1
    for name, predicate in WASTE.items():
        assert facts.filter(predicate).height > 0, name
    # Waste is a minority: most resources are fine.
    assert facts.filter(pl.any_horizontal(WASTE.values()).fill_null(False)).height < resources


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate_sample(tmp_path / "a", resources=50, days=10, seed=1, table_format="parquet")
    b = generate_sample(tmp_path / "b", resources=50, days=10, seed=1, table_format="parquet")
    c = generate_sample(tmp_path / "c", resources=50, days=10, seed=2, table_format="parquet")
    for first, second in ((a.inventory, b.inventory), (a.utilization, b.utilization)):
        assert first.read_bytes() == second.read_bytes()
    assert sorted(p.read_bytes() for p in a.billing.iterdir()) == sorted(
        p.read_bytes() for p in b.billing.iterdir()
    )
    assert a.inventory.read_bytes() != c.inventory.read_bytes()


def test_billing_is_split_in_parts(tmp_path: Path) -> None:
    files = generate_sample(tmp_path, resources=20, days=10, rows_per_part=50)
    parts = sorted(files.billing.iterdir())
    assert len(parts) == 5  # 2 days of 20 resources per part
    rows = sum(pl.read_parquet(part).height for part in parts)
    assert rows == files.billing_rows
    last = pl.read_parquet(parts[-1])["ChargePeriodEnd"].max()
    assert last == SAMPLE_END.replace(tzinfo=None) or last == SAMPLE_END


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate_sample(tmp_path, resources=0)
    with pytest.raises(ConfigError):
        generate_sample(tmp_path, table_format="xlsx")


def test_bundled_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    shipped = bundled_sample()
    fresh = generate_sample(tmp_path, **BUNDLED_SAMPLE)  # type: ignore[arg-type]
    assert fresh.inventory.read_bytes() == shipped.inventory.read_bytes()
    assert fresh.utilization.read_bytes() == shipped.utilization.read_bytes()
    assert shipped.billing_rows == fresh.billing_rows
    size = sum(p.stat().st_size for p in shipped.billing.parent.rglob("*") if p.is_file())
    assert size < 1_000_000
