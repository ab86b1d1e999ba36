from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import collect_facts
from reclaim.ingest.files import InputFile, discover
from reclaim.ingest.inventory import INVENTORY_FORMATS, read_inventory


def test_csv_inventory_with_aliases_and_derived_facts(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(
        "id,type,status,instance_type,launch_time,attached,volume_type,size_gib,Tags\n"
        'i-1,instance,Running,m4.2xlarge,2026-01-01T00:00:00Z,,,,"{""Team"": ""data""}"\n'
        "vol-1,volume,available,,2026-09-01,false,GP2,100,NULL\n",
        encoding="utf-8",
    )
    facts = collect_facts(inventory=[path], as_of=datetime(2026, 10, 1, tzinfo=UTC)).facts
    vm, volume = facts.sort("resource_id").iter_rows(named=True)
    assert vm["kind"] == "vm"
    assert vm["state"] == "running"
    assert (vm["family"], vm["size"], vm["size_down"]) == ("m4", "2xlarge", "m4.xlarge")
    assert vm["size_down_ratio"] == 0.5
    assert vm["previous_generation"] is True
    assert vm["age_days"] == pytest.approx(273.0)
    assert vm["owner"] == "data"
    assert vm["in_inventory"] is True
    assert vm["in_bill"] is False
    assert vm["cost_30d"] == 0.0
    assert volume["attached"] is False
    assert volume["volume_type"] == "gp2"
    assert volume["size_gb"] == 100.0
    assert volume["days_since_attached"] == pytest.approx(30.0)  # never attached: since creation
    assert volume["tag_count"] == 0


def test_json_array_and_json_lines(tmp_path: Path) -> None:
    records = [
        {"resource_id": "eipalloc-1", "kind": "ip_address", "attached": False, "tags": {"a": 1}},
        {"resource_id": "snap-1", "kind": "snapshot", "used_by_image": True, "size_gb": 8},
    ]
    array = tmp_path / "inv.json"
    array.write_text(json.dumps(records))
    lines = tmp_path / "inv.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records))
    from_array = collect_facts(inventory=[array]).facts
    from_lines = collect_facts(inventory=[lines]).facts
    assert from_array.drop("as_of").equals(from_lines.drop("as_of"))
    ip = from_array.filter(from_array["resource_id"] == "eipalloc-1").row(0, named=True)
    assert ip["attached"] is False
    assert ip["tags"] == {"a": "1"}


def test_bad_records_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(
        "resource_id,attached,created_at,size_gb,attached_volume_count\n"
        "vol-1,true,2026-01-01,10,\n"
        "vol-2,maybe,2026-01-01,10,\n"
        ",true,2026-01-01,10,\n"
        "vol-3,false,last tuesday,10,\n"
        "vol-4,false,2026-01-01,ten,\n"
        "i-5,,,,1.5\n"
        "vol-6,false,2026-01-01,10,\n",
        encoding="utf-8",
    )
    collection = collect_facts(inventory=[path])
    reasons = {s.row: s.reason for s in collection.report.samples()}
    assert reasons == {
        2: "attached is not true or false",
        3: "resource_id is empty",
        4: "created_at is not a timestamp",
        5: "size_gb is not a number",
        6: "attached_volume_count is not whole",
    }
    assert collection.report.bad_rows == 5
    assert sorted(collection.facts["resource_id"]) == ["vol-1", "vol-6"]


def test_last_record_of_a_resource_wins(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text("resource_id,state\ni-1,running\ni-1,stopped\n", encoding="utf-8")
    assert collect_facts(inventory=[path]).facts["state"].to_list() == ["stopped"]


def test_missing_resource_id_column(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text("name,state\nx,running\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="resource_id") as raised:
        collect_facts(inventory=[path])
    assert str(path) in str(raised.value)


def test_broken_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text('[{"resource_id": "a"', encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read json file"):
        collect_facts(inventory=[path])


def test_aws_style_tag_lists(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(
        json.dumps(
            [
                {
                    "resource_id": "i-1",
                    "tags": [{"Key": "Owner", "Value": "ml"}, {"Key": "env", "Value": "dev"}],
                }
            ]
        )
    )
    row = collect_facts(inventory=[path]).facts.row(0, named=True)
    assert row["tags"] == {"Owner": "ml", "env": "dev"}
    assert (row["owner"], row["tag_count"]) == ("ml", 2)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # One file, sorted by id and each id once: nothing to sort or drop.
        (
            [["a,running", "b,stopped", "c,running"]],
            {"a": "running", "b": "stopped", "c": "running"},
        ),
        # One file, unsorted, an id twice: the later record wins.
        ([["c,running", "a,running", "c,stopped"]], {"a": "running", "c": "stopped"}),
        # Two files, each sorted and each id once in it: the later file wins.
        ([["a,running", "b,running"], ["a,stopped"]], {"a": "stopped", "b": "running"}),
    ],
)
def test_inventory_is_one_record_per_resource_sorted_by_id(
    tmp_path: Path, files: list[list[str]], expected: dict[str, str]
) -> None:
    paths: list[InputFile] = []
    for index, rows in enumerate(files):
        path = tmp_path / f"inventory-{index}.csv"
        path.write_text("\n".join(["id,status", *rows]) + "\n", encoding="utf-8")
        paths += discover([path], INVENTORY_FORMATS)
    frame = read_inventory(paths).per_resource
    assert frame["resource_id"].to_list() == sorted(expected)
    assert dict(zip(frame["resource_id"], frame["state"], strict=True)) == expected
