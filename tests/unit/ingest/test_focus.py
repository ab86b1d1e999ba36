from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import REQUIRED_COLUMNS, collect_facts, validate_facts

from .conftest import HEADER, WriteFocus, focus_row


def facts_of(*paths: Path, **kwargs: object) -> pl.DataFrame:
    collection = collect_facts(list(paths), **kwargs)  # type: ignore[arg-type]
    validate_facts(collection.facts)
    return collection.facts


def test_published_focus_sample_loads(shared_data: Path) -> None:
    collection = collect_facts([shared_data / "focus" / "focus_sample.csv"])
    validate_facts(collection.facts)
    report = collection.report
    assert report.rows == 1000
    assert report.bad_rows == 0
    assert report.as_of == datetime(2024, 10, 1, tzinfo=UTC)
    facts = collection.facts
    # 842 billed resources and the 2 Savings Plans that four usage rows name in
    # CommitmentDiscountId (status Used): a commitment is a resource of its own.
    assert facts.height == 844
    commitments = facts.filter(pl.col("kind") == "commitment")
    assert commitments["commitment_type"].to_list() == ["Savings Plan", "Savings Plan"]
    assert commitments["commitment_category"].to_list() == ["spend", "spend"]
    assert set(facts["provider"].unique()) == {"aws", "microsoft", "oracle"}
    # Mixed-case enumerations come out canonical; ids and tags survive.
    assert "Networking" in set(facts["service_category"].drop_nulls())
    assert facts["tags"].struct.field("environment").drop_nulls().len() > 0
    assert facts["currency"].unique().to_list() == ["USD"]


def test_excerpt_loads_and_adds_up(excerpt: Path) -> None:
    collection = collect_facts([excerpt])
    raw = pl.read_csv(excerpt, infer_schema=False, null_values=["NULL"]).with_columns(
        pl.col("EffectiveCost").cast(pl.Float64)
    )
    attributed = raw.filter(pl.col("ResourceId").is_not_null())
    assert collection.report.bad_rows == 0
    commitments = raw["CommitmentDiscountId"].drop_nulls().unique()
    assert commitments.len() == 1  # a Savings Plan named by usage rows it covered
    assert collection.facts.height == attributed["ResourceId"].n_unique() + commitments.len()
    # Every row of the excerpt lies within 30 days of its end, so nothing is left out.
    assert collection.facts["cost_30d"].sum() == pytest.approx(attributed["EffectiveCost"].sum())
    unattributed = raw.filter(pl.col("ResourceId").is_null())["EffectiveCost"].sum()
    assert collection.report.unattributed_cost == pytest.approx(unattributed)


def test_gzip_parquet_and_folder_agree_with_csv(excerpt: Path, tmp_path: Path) -> None:
    expected = facts_of(excerpt)
    gz = tmp_path / "gz" / "bill.csv.gz"
    gz.parent.mkdir()
    with excerpt.open("rb") as source, gzip.open(gz, "wb") as target:
        shutil.copyfileobj(source, target)
    assert facts_of(gz).equals(expected)
    parquet = tmp_path / "pq" / "bill.parquet"
    parquet.parent.mkdir()
    pl.read_csv(excerpt, infer_schema=False, null_values=["NULL"]).write_parquet(parquet)
    from_parquet = facts_of(parquet)
    assert from_parquet.drop("tags").equals(expected.drop("tags"))
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(excerpt, folder / "a.csv")
    (folder / "manifest.json").write_text("{}")  # export folders carry manifests: skipped
    assert facts_of(folder).equals(expected)


def test_same_content_twice_is_read_once(excerpt: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copy(excerpt, copy)
    collection = collect_facts([excerpt, copy])
    assert collection.facts.equals(facts_of(excerpt))
    duplicates = [f for f in collection.report.files if f.duplicate_of is not None]
    assert len(duplicates) == 1
    assert {duplicates[0].path, duplicates[0].duplicate_of} == {str(excerpt), str(copy)}
    assert collection.report.rows == 60


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_required_column_names_column_and_file(
    write_focus: WriteFocus, column: str
) -> None:
    header = ",".join(name for name in HEADER.split(",") if name != column)
    path = write_focus(header=header)
    with pytest.raises(ConfigError) as raised:
        collect_facts([path])
    assert column in str(raised.value)
    assert str(path) in str(raised.value)


def test_header_case_does_not_matter(write_focus: WriteFocus) -> None:
    path = write_focus(focus_row("2"), header=HEADER.lower())
    assert facts_of(path)["cost_30d"].to_list() == [2.0]


def test_messy_values_are_accepted(write_focus: WriteFocus) -> None:
    path = write_focus(
        focus_row("NULL", effective="3", listed="NULL", tags="NULL", category="networking"),
        focus_row("-1.5", start="2026-10-29T00:00:00Z", end="2026-10-30T00:00:00.000Z"),
        focus_row("2", start="2026-10-28T02:00:00+02:00", end="2026-10-29 00:00"),
        focus_row("4", resource="NULL"),
    )
    facts = facts_of(path)
    collection = collect_facts([path])
    # FOCUS requires BilledCost: the NULL one is the only bad row.
    assert [(s.row, s.reason) for s in collection.report.samples()] == [(1, "BilledCost is empty")]
    row = facts.row(0, named=True)
    assert row["cost_30d"] == pytest.approx(-1.5 + 2)  # credits are negative and count
    assert row["first_seen"] == datetime(2026, 10, 28, tzinfo=UTC)
    assert collection.report.unattributed_cost == pytest.approx(4.0)
    assert row["tags"] == {"owner": "payments"}
    assert "x_Custom" not in facts.columns


def test_service_category_canonical_casing(write_focus: WriteFocus) -> None:
    path = write_focus(focus_row(category="mAnAgEmEnT aNd GoVeRnAnCe"))
    assert facts_of(path)["service_category"].to_list() == ["Management and Governance"]


def test_bad_rows_are_counted_with_row_numbers_and_good_rows_kept(
    write_focus: WriteFocus,
) -> None:
    path = write_focus(
        focus_row("1", resource="a"),
        focus_row("abc", effective="1", resource="a"),
        focus_row("1", resource="b", start="yesterday"),
        focus_row("1", resource="c", start="2026-10-31 00:00:00", end="2026-10-30 00:00:00"),
        focus_row("2", resource="b"),
        focus_row("1", effective="", resource="d"),
    )
    collection = collect_facts([path])
    report = collection.report
    assert report.rows == 6
    assert report.bad_rows == 4
    reasons = {sample.row: sample.reason for sample in report.samples()}
    assert reasons == {
        2: "BilledCost is not a number",
        3: "ChargePeriodStart is not a timestamp",
        4: "ChargePeriodEnd is before ChargePeriodStart",
        6: "EffectiveCost is empty",
    }
    assert all(sample.dropped and sample.path == str(path) for sample in report.samples())
    costs = dict(collection.facts.select("resource_id", "cost_30d").iter_rows())
    assert costs == {"a": 1.0, "b": 2.0}


def test_unreadable_tags_keep_the_cost(write_focus: WriteFocus) -> None:
    path = write_focus(focus_row("5", tags="owner=payments"))
    collection = collect_facts([path])
    assert collection.facts["cost_30d"].to_list() == [5.0]
    assert collection.facts["tags"].to_list() == [None]
    assert collection.report.bad_rows == 0
    [warning] = collection.report.samples()
    assert (warning.row, warning.dropped) == (1, False)
    assert "Tags" in warning.reason


def test_cost_window_is_last_30_days_of_the_data(write_focus: WriteFocus) -> None:
    path = write_focus(
        focus_row("100", start="2026-09-01 00:00:00", end="2026-09-02 00:00:00"),
        focus_row("7", start="2026-10-20 00:00:00", end="2026-10-21 00:00:00"),
        focus_row("1", start="2026-10-30 00:00:00", end="2026-10-31 00:00:00"),
    )
    row = facts_of(path).row(0, named=True)
    assert row["cost_30d"] == 8.0
    assert row["cost_7d"] == 1.0
    assert row["as_of"] == datetime(2026, 10, 31, tzinfo=UTC)
    assert row["first_seen"] == datetime(2026, 9, 1, tzinfo=UTC)
    earlier = facts_of(path, as_of=datetime(2026, 9, 10, tzinfo=UTC)).row(0, named=True)
    assert earlier["cost_30d"] == 100.0


def test_focus_12_provider_column_preferred(write_focus: WriteFocus) -> None:
    header = HEADER.replace("ProviderName", "ServiceProviderName") + ",ProviderName"
    path = write_focus(focus_row() + ",Legacy", header=header)
    assert facts_of(path)["provider"].to_list() == ["aws"]


def test_latest_tags_win(write_focus: WriteFocus) -> None:
    path = write_focus(
        focus_row(
            start="2026-10-28 00:00:00", end="2026-10-29 00:00:00", tags='"{""team"": ""old""}"'
        ),
        focus_row(start="2026-10-30 00:00:00", tags='"{""team"": ""new""}"'),
        focus_row(start="2026-10-30 00:00:00", end="2026-10-31 00:00:00", tags="NULL"),
    )
    row = facts_of(path).row(0, named=True)
    assert row["tags"] == {"team": "new"}
    assert row["owner"] == "new"


def test_parquet_map_tags(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "BilledCost": [1.0],
            "EffectiveCost": [1.0],
            "ChargePeriodStart": [datetime(2026, 10, 1)],
            "ChargePeriodEnd": [datetime(2026, 10, 2)],
            "ResourceId": ["vol-1"],
            "ServiceName": ["EC2"],
            "BillingCurrency": ["EUR"],
            "Tags": [[{"key": "Owner", "value": "data"}]],
        }
    )
    path = tmp_path / "bill.parquet"
    frame.write_parquet(path)
    row = facts_of(path).row(0, named=True)
    assert row["tags"] == {"Owner": "data"}
    assert row["owner"] == "data"
    assert row["kind"] == "volume"
    assert row["currency"] == "EUR"
    assert row["list_cost_30d"] is None  # no ListCost column: unknown, not zero


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bill.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(ConfigError, match="cannot read billing file") as raised:
        collect_facts([path])
    assert str(path) in str(raised.value)


def test_unknown_file_type_and_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "bill.xlsx"
    path.write_text("x")
    with pytest.raises(ConfigError, match="unsupported file type"):
        collect_facts([path])
    with pytest.raises(ConfigError, match="no such file"):
        collect_facts([tmp_path / "absent.csv"])


def test_empty_file_gives_empty_facts(write_focus: WriteFocus) -> None:
    facts = facts_of(write_focus())
    assert facts.height == 0
