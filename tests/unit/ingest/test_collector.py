from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from reclaim.ingest import FACT_COLUMNS, collect_facts

from .conftest import WriteFocus, focus_row


def test_bill_inventory_and_metrics_join_per_resource(
    write_focus: WriteFocus, tmp_path: Path
) -> None:
    bill = write_focus(
        focus_row("3", resource="i-1", region="us-east-1"),
        focus_row("4", resource="vol-9", rtype="NULL", tags="NULL"),
    )
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            [
                {"resource_id": "i-1", "instance_type": "c5.xlarge", "region": "eu-west-1",
                 "tags": {"owner": "search"}, "state": "running"},
                {"resource_id": "eipalloc-2", "attached": False},
            ]
        )
    )  # fmt: skip
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("resource_id,timestamp,cpu\ni-1,2026-10-30T12:00:00Z,3\n")
    collection = collect_facts([bill], [inventory], [metrics])
    facts = collection.facts
    assert facts.columns == list(FACT_COLUMNS)
    rows = {row["resource_id"]: row for row in facts.iter_rows(named=True)}
    assert set(rows) == {"i-1", "vol-9", "eipalloc-2"}
    vm = rows["i-1"]
    assert vm["region"] == "us-east-1"  # where the bill books it
    assert vm["owner"] == "search"  # the inventory's current tags
    assert (vm["cost_30d"], vm["cpu_max"], vm["size_down"]) == (3.0, 3.0, "c5.large")
    assert (vm["in_bill"], vm["in_inventory"]) == (True, True)
    assert rows["vol-9"]["kind"] == "volume"  # from the id when the bill has no type
    assert rows["vol-9"]["in_inventory"] is False
    ip = rows["eipalloc-2"]
    assert (ip["kind"], ip["cost_30d"], ip["samples"]) == ("ip_address", 0.0, 0)
    assert ip["list_cost_30d"] == 0.0
    assert collection.report.sources == ["billing", "inventory", "utilization"]
    assert collection.report.resources == 3


def test_nothing_in_gives_empty_facts() -> None:
    collection = collect_facts()
    assert collection.facts.height == 0
    assert collection.facts.columns == list(FACT_COLUMNS)


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ("m5.4xlarge", ("m5", "4xlarge", "m5.2xlarge", 0.5, False)),
        ("db.r4.large", ("r4", "large", "db.r4.medium", 0.5, True)),
        ("c5.9xlarge", ("c5", "9xlarge", "c5.4xlarge", 32 / 72, False)),
        ("t3.nano", ("t3", "nano", None, None, False)),
        ("Standard_D2s_v3", (None, None, None, None, None)),
    ],
)
def test_instance_type_facts(
    tmp_path: Path, instance_type: str, expected: tuple[object, ...]
) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(f"resource_id,instance_type\nx,{instance_type}\n")
    row = collect_facts(inventory=[inventory]).facts.row(0, named=True)
    got = tuple(
        row[name]
        for name in ("family", "size", "size_down", "size_down_ratio", "previous_generation")
    )
    assert got[:3] == expected[:3]
    assert got[3] == (pytest.approx(expected[3]) if expected[3] is not None else None)
    assert got[4] == expected[4]


@pytest.mark.parametrize(
    "ids",
    [
        [["a", "c", "e"], ["b", "c", "f"], ["c"]],  # sorted parts, shared ids
        [["b", "a"], ["a", "c"]],  # a part out of order
        [["a", None], ["b"]],  # a null
        [["x"], []],
    ],
)
def test_the_union_of_ids_is_every_id_once_sorted(ids: list[list[str | None]]) -> None:
    from reclaim.ingest.collector import _sorted_union

    columns = [pl.Series("resource_id", part, dtype=pl.String) for part in ids]
    union = _sorted_union(columns)
    expected = pl.concat(columns).unique().sort()
    assert union.to_list() == expected.to_list()
    assert union.is_sorted()
