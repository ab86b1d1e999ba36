"""Fact collections in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal
from sqlalchemy.engine import Engine

import reclaim.ingest.ledger as ledger
from reclaim.errors import ConfigError, ExecutionError
from reclaim.ingest import (
    collect_facts,
    collect_into,
    generate_sample,
    imported_files,
    latest_collection,
    list_collections,
    load_facts,
)
from reclaim.store import upgrade
from reclaim.store.tables.ingest import fact_chunks


@pytest.fixture
def db(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    files = generate_sample(tmp_path_factory.mktemp("sample"), resources=60, days=35, seed=5)
    return files.billing, files.inventory, files.utilization


def test_stored_facts_equal_in_memory_facts(db: Engine, sample: tuple[Path, Path, Path]) -> None:
    billing, inventory, utilization = sample
    stored, report = collect_into(db, [billing], [inventory], [utilization])
    assert stored.new
    assert report is not None
    assert stored.resources == 61  # 60 and the sample's Savings Plan
    expected = collect_facts([billing], [inventory], [utilization]).facts
    # Means over parallel groups may differ in the last bit between two reads of the files.
    assert_frame_equal(load_facts(db), expected, check_exact=False)
    assert load_facts(db, stored.id).schema == expected.schema


def test_stored_facts_can_be_read_a_few_columns_at_a_time(
    db: Engine, sample: tuple[Path, Path, Path]
) -> None:
    # A rule pack reads 46 of the 72 columns; the weekly job reads only those from storage.
    billing, inventory, utilization = sample
    collect_into(db, [billing], [inventory], [utilization])
    whole = load_facts(db)
    few = load_facts(db, columns={"tags", "cost_30d", "resource_id", "not_a_fact"})
    # In the contract's order, whatever the order asked; unknown names are not facts.
    assert few.columns == [name for name in whole.columns if name in few.columns]
    assert set(few.columns) == {"tags", "cost_30d", "resource_id"}
    assert_frame_equal(few, whole.select(few.columns))


def test_same_files_twice_add_nothing(
    db: Engine, sample: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    billing, inventory, utilization = sample
    first, _ = collect_into(db, [billing], [inventory], [utilization])
    # The same content under another name is the same input.
    renamed = tmp_path / "renamed.csv"
    shutil.copy(inventory, renamed)
    again, report = collect_into(db, [billing], [renamed], [utilization])
    assert report is None
    assert (again.id, again.new) == (first.id, False)
    assert len(list_collections(db)) == 1
    assert len(imported_files(db)) == 3
    with db.connect() as connection:
        chunks = connection.execute(sa.select(sa.func.count()).select_from(fact_chunks)).scalar()
    assert chunks == 1


def test_changed_input_makes_a_new_collection(
    db: Engine, sample: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    billing, inventory, _ = sample
    first, _ = collect_into(db, [billing], [inventory])
    changed = tmp_path / "inventory.csv"
    changed.write_text(inventory.read_text() + "extra-1,vm\n".replace(",vm", ""))
    second, report = collect_into(db, [billing], [changed])
    assert second.new
    assert second.id != first.id
    assert report is not None
    latest = latest_collection(db)
    assert latest is not None
    assert latest.id == second.id
    assert load_facts(db).height == 62  # 60, the Savings Plan and extra-1
    assert load_facts(db, first.id).height == 61
    # The billing file was entered in the ledger once, by the first collection.
    kinds = sorted((f.kind, f.collection_id) for f in imported_files(db))
    assert kinds == [("billing", first.id), ("inventory", first.id), ("inventory", second.id)]


def test_bad_rows_are_counted_in_the_collection(db: Engine, tmp_path: Path) -> None:
    bill = tmp_path / "bill.csv"
    bill.write_text(
        "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName,"
        "BillingCurrency\n"
        "1,1,2026-10-01,2026-10-02,i-1,EC2,USD\n"
        "x,1,2026-10-01,2026-10-02,i-2,EC2,USD\n"
    )
    stored, _ = collect_into(db, [bill])
    assert (stored.rows_read, stored.bad_rows, stored.resources) == (2, 1, 1)
    [sample] = stored.summary["bad_row_samples"]
    assert sample == {
        "path": str(bill),
        "row": 2,
        "reason": "BilledCost is not a number",
        "dropped": True,
    }
    assert [f.bad_rows for f in imported_files(db)] == [1]


def test_large_collections_are_chunked(
    db: Engine, sample: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "CHUNK_ROWS", 7)
    billing, inventory, utilization = sample
    stored, _ = collect_into(db, [billing], [inventory], [utilization])
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(fact_chunks.c.seq, fact_chunks.c.rows).order_by(fact_chunks.c.seq)
        ).all()
    assert [seq for seq, _ in rows] == list(range(9))
    assert sum(count for _, count in rows) == 61  # 60 and the sample's Savings Plan
    facts = load_facts(db, stored.id)
    expected = collect_facts([billing], [inventory], [utilization]).facts
    assert_frame_equal(facts, expected, check_exact=False)


def test_empty_collection_round_trips(db: Engine, tmp_path: Path) -> None:
    bill = tmp_path / "bill.csv"
    bill.write_text(
        "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName,"
        "BillingCurrency\n"
    )
    stored, _ = collect_into(db, [bill])
    assert stored.resources == 0
    facts = load_facts(db)
    assert facts.height == 0
    assert isinstance(facts.schema["tags"], pl.Struct)


def test_no_collection_yet(db: Engine) -> None:
    assert latest_collection(db) is None
    with pytest.raises(ConfigError, match="no facts collected yet"):
        load_facts(db)
    with pytest.raises(ConfigError, match="no fact collection 42"):
        load_facts(db, 42)


def test_no_inputs_is_a_config_error(db: Engine) -> None:
    with pytest.raises(ConfigError, match="no input files"):
        collect_into(db)


def test_other_facts_version_is_refused(db: Engine, sample: tuple[Path, Path, Path]) -> None:
    billing, _, _ = sample
    stored, _ = collect_into(db, [billing])
    with db.begin() as connection:
        connection.execute(
            sa.text("UPDATE fact_collections SET facts_version = 99 WHERE id = :id"),
            {"id": stored.id},
        )
    with pytest.raises(ConfigError, match="facts version 99"):
        load_facts(db)


def test_concurrent_collections_sharing_a_new_file(
    db: Engine, sample: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    billing, inventory, _ = sample
    variants = []
    for index in range(4):
        variant = tmp_path / f"inventory-{index}.csv"
        variant.write_text(inventory.read_text() + f"extra-{index}\n")
        variants.append(variant)
    with ThreadPoolExecutor(max_workers=4) as pool:
        stored = list(pool.map(lambda path: collect_into(db, [billing], [path])[0], variants))
    assert len({item.id for item in stored}) == 4
    assert all(item.new for item in stored)
    kinds = sorted(f.kind for f in imported_files(db))
    assert kinds == ["billing"] + ["inventory"] * 4


def test_collecting_a_again_makes_a_the_default(
    db: Engine, sample: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    billing, inventory, _ = sample
    smaller = tmp_path / "inventory.csv"
    lines = inventory.read_text().splitlines()
    smaller.write_text("\n".join(lines[:-5]) + "\n")
    a, _ = collect_into(db, [billing], [inventory])
    b, _ = collect_into(db, [billing], [smaller])
    assert latest_collection(db).id == b.id  # type: ignore[union-attr]
    again, report = collect_into(db, [billing], [inventory])
    assert report is None
    assert again.id == a.id
    # What `collect` just reported is what `recommend` reads by default.
    assert latest_collection(db).id == a.id  # type: ignore[union-attr]
    assert_frame_equal(load_facts(db), load_facts(db, a.id))
    assert [c.id for c in list_collections(db)] == [b.id, a.id]


def test_file_replaced_while_collected_stores_nothing(
    db: Engine, tmp_path: Path, sample: tuple[Path, Path, Path]
) -> None:
    billing, _, _ = sample
    bill = tmp_path / "billing"
    shutil.copytree(billing, bill)
    parts = sorted(bill.glob("*.parquet"))
    original = parts[0].read_bytes()
    doubled = pl.read_parquet(parts[0]).with_columns(pl.col("BilledCost", "EffectiveCost") * 2)

    def replace_midway(message: str) -> None:
        if message.startswith("aggregating"):
            # As an export job replaces a file: write aside, then rename over it.
            doubled.write_parquet(tmp_path / "new.parquet")
            os.replace(tmp_path / "new.parquet", parts[0])

    with pytest.raises(ExecutionError, match="changed while it was collected"):
        collect_into(db, [bill], progress=replace_midway)
    assert list_collections(db) == []
    assert imported_files(db) == []
    # The old bytes again: a real collection of them, not "nothing new" with other facts.
    parts[0].write_bytes(original)
    stored, report = collect_into(db, [bill])
    assert report is not None
    assert stored.new
    assert_frame_equal(load_facts(db), collect_facts([billing]).facts, check_exact=False)
