"""Facts for the commitment and IOPS rules: commitment lines, IOPS-priced lines, provisioned and
used IOPS, platform. Every figure below is worked out by hand from the rows written here."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from reclaim.ingest import collect_facts

from .conftest import daily_charge

START = datetime(2026, 10, 2, tzinfo=UTC)
END = START + timedelta(days=30)
SP1 = "arn:aws:savingsplans::111:savingsplan/sp1"
SP2 = "arn:aws:savingsplans::111:savingsplan/sp2"
COLUMNS = [
    *("BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd", "ResourceId"),
    *("ResourceType", "ServiceName", "BillingCurrency", "ProviderName", "BillingAccountId"),
    *("SubAccountId", "ChargeCategory", "PricingUnit", "CommitmentDiscountId"),
    *("CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountCategory"),
]


def _bill(path: Path) -> Path:
    rows: list[dict[str, Any]] = []
    for day in range(30):
        base = {
            **daily_charge(START, day),
            "ChargeCategory": "Usage",
            "PricingUnit": "Hrs",
        }
        sp = {"CommitmentDiscountType": "Savings Plan", "CommitmentDiscountCategory": "Spend"}
        used = {**sp, "CommitmentDiscountStatus": "Used", "BilledCost": 0}
        rows += [
            # i-a runs under sp1: nothing on the invoice, 2 a day of the plan amortized on it.
            {**base, **used, "EffectiveCost": 2, "ResourceId": "i-a", "CommitmentDiscountId": SP1},
            {**base, "BilledCost": 3, "EffectiveCost": 3, "ResourceId": "i-b"},
            {**base, **used, "EffectiveCost": 1.5, "ResourceId": "i-c",
             "CommitmentDiscountId": SP2},
            # sp1's fee (4 a day, invoiced, amortized onto usage) and its unused half, on a row
            # without ResourceId as some exports write it.
            {
                **base,
                **sp,
                "ChargeCategory": "Purchase",
                "BilledCost": 4,
                "EffectiveCost": 0,
                "ResourceId": SP1,
                "ResourceType": "Savings Plan",
                "CommitmentDiscountId": SP1,
            },
            {
                **base,
                **sp,
                "CommitmentDiscountStatus": "Unused",
                "BilledCost": 0,
                "EffectiveCost": 2,
                "ResourceId": "",
                "CommitmentDiscountId": SP1,
            },
            # An io1 volume: storage by GB-Mo, provisioned IOPS by IOPS-Mo.
            {**base, "PricingUnit": "GB-Mo", "BilledCost": 0.4, "EffectiveCost": 0.4,
             "ResourceId": "vol-1", "ResourceType": "Volume"},
            {**base, "PricingUnit": "IOPS-Mo", "BilledCost": 10, "EffectiveCost": 10,
             "ResourceId": "vol-1", "ResourceType": "Volume"},
        ]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_commitments_get_used_and_unused_cost_and_their_own_row(tmp_path: Path) -> None:
    collection = collect_facts([_bill(tmp_path / "bill.csv")])
    facts = {row["resource_id"]: row for row in collection.facts.iter_rows(named=True)}
    assert set(facts) == {SP1, SP2, "i-a", "i-b", "i-c", "vol-1"}
    sp1 = facts[SP1]
    assert sp1["kind"] == "commitment"
    assert sp1["commitment_type"] == "Savings Plan"
    assert sp1["commitment_category"] == "spend"
    assert sp1["commitment_used_30d"] == pytest.approx(60.0)  # 30 days x 2 on i-a
    assert sp1["commitment_unused_30d"] == pytest.approx(60.0)  # 30 days x 2 unused
    # Its unused half is its cost (booked on it, not unattributed); its fee is invoiced.
    assert sp1["cost_30d"] == pytest.approx(60.0)
    assert sp1["billed_cost_30d"] == pytest.approx(120.0)
    assert collection.report.unattributed_cost == 0.0
    # sp2 has no row of its own: it is known only from the usage it covered.
    sp2 = facts[SP2]
    assert sp2["kind"] == "commitment"
    assert sp2["in_bill"] is True
    assert sp2["commitment_used_30d"] == pytest.approx(45.0)
    assert sp2["commitment_unused_30d"] == 0.0
    assert sp2["cost_30d"] == 0.0
    assert sp2["first_seen"] == START
    assert sp2["last_seen"] == END
    assert (sp2["currency"], sp2["provider"]) == ("USD", "aws")
    # Covered usage stays the resource's cost; the resource is no commitment.
    assert facts["i-a"]["cost_30d"] == pytest.approx(60.0)
    assert facts["i-a"]["billed_cost_30d"] == 0.0
    assert facts["i-a"]["kind"] == "vm"
    assert facts["i-a"]["commitment_used_30d"] is None


def test_iops_priced_rows_give_the_iops_part_of_a_volume(tmp_path: Path) -> None:
    facts = collect_facts([_bill(tmp_path / "bill.csv")]).facts
    vol = facts.filter(pl.col("resource_id") == "vol-1").row(0, named=True)
    assert vol["cost_30d"] == pytest.approx(312.0)  # 30 x (0.4 + 10)
    assert vol["iops_cost_30d"] == pytest.approx(300.0)  # 30 x 10
    # Unknown is null, not 0: i-b has no IOPS-priced row.
    assert facts.filter(pl.col("resource_id") == "i-b")["iops_cost_30d"].item() is None


def test_provisioned_and_used_iops_and_platform(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        "resource_id,kind,volume_type,iops,platform_details\n"
        "vol-1,volume,io1,10000,\n"
        "i-1,vm,,,Windows\n",
        encoding="utf-8",
    )
    metrics = tmp_path / "metrics.csv"
    t1 = (END - timedelta(hours=2)).isoformat()
    t2 = (END - timedelta(hours=1)).isoformat()
    # Reads and writes at one time add up to one I/O rate: 400 then 100.
    metrics.write_text(
        f"resource_id,timestamp,read_iops,write_iops\nvol-1,{t1},100,300\nvol-1,{t2},50,50\n",
        encoding="utf-8",
    )
    facts = collect_facts(inventory=[inventory], utilization=[metrics], as_of=END).facts
    vol = facts.filter(pl.col("resource_id") == "vol-1").row(0, named=True)
    assert vol["provisioned_iops"] == 10000.0
    assert vol["iops_max"] == 400.0
    assert vol["iops_avg"] == 250.0
    assert vol["samples"] == 4
    assert facts.filter(pl.col("resource_id") == "i-1")["platform"].item() == "windows"
