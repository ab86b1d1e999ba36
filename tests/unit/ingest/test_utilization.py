from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.errors import ConfigError
from reclaim.ingest import collect_facts

END = datetime(2026, 11, 1, tzinfo=UTC)


def test_long_format_aggregates_avg_p95_max(tmp_path: Path) -> None:
    rows = ["resource_id,timestamp,metric,value"]
    for hour in range(100):
        when = (END - timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"i-1,{when},CPUUtilization,{hour}")
        rows.append(f"i-1,{when},NetworkIn,{100}")
        rows.append(f"i-1,{when},NetworkOut,{50}")
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    facts = collect_facts(utilization=[path]).facts
    row = facts.row(0, named=True)
    expected = pl.Series(range(100), dtype=pl.Float64)
    assert row["cpu_avg"] == pytest.approx(expected.mean())
    assert row["cpu_p95"] == pytest.approx(expected.quantile(0.95, interpolation="linear"))
    assert row["cpu_max"] == 99.0
    assert row["network_avg"] == 150.0  # in and out at one time add up
    assert row["samples"] == 300
    assert row["metric_days"] == pytest.approx(99 / 24)
    assert row["as_of"] == END


def test_wide_format_and_window(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    old = (END - timedelta(days=40)).isoformat()
    path.write_text(
        "resource_id,timestamp,cpu,mem,requests,connections\n"
        f"db-1,{END.isoformat()},5,,,0\n"
        f"db-1,{(END - timedelta(days=1)).isoformat()},7,,,2\n"
        f"lb-1,{END.isoformat()},,,10,\n"
        f"lb-1,{old},,,1000,\n",
        encoding="utf-8",
    )
    facts = collect_facts(utilization=[path]).facts.sort("resource_id")
    db, lb = facts.iter_rows(named=True)
    assert (db["cpu_max"], db["connections_max"], db["connections_avg"]) == (7.0, 2.0, 1.0)
    assert db["mem_avg"] is None
    assert lb["requests_sum"] == 10.0  # the 40-day-old sample is outside the 30-day window
    wider = collect_facts(utilization=[path], window_days=60).facts.sort("resource_id")
    assert wider["requests_sum"].to_list()[1] == 1010.0


def test_bad_samples_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(
        "resource_id,timestamp,metric,value\n"
        f"i-1,{END.isoformat()},cpu,5\n"
        f"i-1,{END.isoformat()},cpu,five\n"
        f"i-1,never,cpu,5\n"
        f"i-1,{END.isoformat()},gpu,5\n"
        f",{END.isoformat()},cpu,5\n"
        f"i-1,{END.isoformat()},cpu,\n",
        encoding="utf-8",
    )
    collection = collect_facts(utilization=[path])
    reasons = {s.row: s.reason for s in collection.report.samples()}
    assert reasons == {
        2: "value is not a number",
        3: "timestamp is empty or not a timestamp",
        4: "unknown metric (use cpu, mem, network, iops, requests, connections)",
        5: "resource_id is empty",
        6: "value is empty",
    }
    assert collection.facts["samples"].to_list() == [1]


def test_wide_bad_rows_are_reported_and_their_readable_cells_kept(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    now = END.isoformat()
    path.write_text(
        "resource_id,timestamp,cpu,mem\n"
        f"i-1,{now},5,50\n"
        f"i-1,{now},five,60\n"  # the cpu cell is bad, the mem cell a good sample
        f"i-1,never,5,50\n"
        f",{now},5,50\n"
        f"i-1,{now},,\n"  # nothing measured: not a row of samples, not a bad row
        f"i-1,{now},NULL,70\n",
        encoding="utf-8",
    )
    collection = collect_facts(utilization=[path])
    reasons = {s.row: s.reason for s in collection.report.samples()}
    assert reasons == {
        2: "value is not a number",
        3: "timestamp is empty or not a timestamp",
        4: "resource_id is empty",
    }
    [report] = collection.report.files
    assert (report.rows, report.bad_rows) == (5, 3)
    row = collection.facts.row(0, named=True)
    assert (row["cpu_max"], row["mem_max"], row["samples"]) == (5.0, 70.0, 4)
    assert row["mem_avg"] == pytest.approx(60.0)


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("resource_id,cpu\ni-1,5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="timestamp"):
        collect_facts(utilization=[path])
    path.write_text("resource_id,timestamp,color\ni-1,2026-01-01,red\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="neither metric/value"):
        collect_facts(utilization=[path])


def test_bucketed_aggregation_equals_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reclaim.ingest import generate_sample
    from reclaim.ingest import utilization as module

    files = generate_sample(tmp_path, resources=40, days=10, seed=2, table_format="parquet")
    whole = collect_facts([], [], [files.utilization]).facts
    # 500 samples a bucket: the resources are aggregated a few at a time.
    monkeypatch.setattr(module, "BUCKET_SAMPLES", 500)
    bucketed = collect_facts([], [], [files.utilization]).facts
    assert bucketed["samples"].sum() > 500
    assert_frame_equal(bucketed, whole, check_exact=False)
