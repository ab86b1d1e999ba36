"""Wide utilization rows aggregated per resource directly give the figures of the samples.

``aggregate_utilization`` groups wide rows (one column per metric) by resource without first
unpivoting them into one sample per metric (``utilization._aggregate_wide``). The figures must
be those of the sample-by-sample aggregation (``utilization._aggregate``) on crafted rows:
in and out in two columns and in two files at one time, duplicated rows, an overlapping copy
of a file, outliers, a column null in every row, rows outside the window, a row with nothing
readable, a resource with requests only, in memory and in buckets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.ingest import utilization as module
from reclaim.ingest.files import FileFormat, InputFile

END = datetime(2026, 11, 1, tzinfo=UTC)


def _when(hours: float) -> str:
    return (END - timedelta(hours=hours)).isoformat()


def _write(path: Path, header: str, rows: list[str]) -> InputFile:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return InputFile(path, FileFormat.CSV)


@pytest.fixture
def files(tmp_path: Path) -> list[InputFile]:
    header = (
        "resource_id,timestamp,cpu,mem,network_in,network_out,requests,connections,"
        "read_iops,write_iops"
    )
    main: list[str] = []
    for hour in range(0, 24 * 40, 7):
        # i-1: every metric but mem (null in every row); a CPU outlier; in and out.
        cpu = 1e12 if hour == 70 else (hour * 37 % 101) / 3
        main.append(f"i-1,{_when(hour)},{cpu},,{hour * 1.1},{hour % 13},,,{hour % 5},{hour % 7}")
        # i-2: requests only, some hours not measured at all.
        requests = "" if hour % 3 == 0 else str(hour % 17)
        main.append(f"i-2,{_when(hour)},,,,,{requests},,,")
        # i-3: duplicated rows at some times (both copies count, network adds up per time).
        main.append(f"i-3,{_when(hour)},{hour % 9},{hour % 4},{hour},,,{hour % 3},,")
        if hour % 21 == 0:
            main.append(f"i-3,{_when(hour)},{hour % 9},{hour % 4},{hour},,,{hour % 3},,")
    main.append(f"i-4,{_when(-5)},50,50,,,,,,")  # after the end of the window
    main.append(f"i-4,{_when(3)},five,,,,,,,")  # nothing readable: not a sample
    main.append(f"i-4,{_when(4)},7,1e300,1e308,1e308,,,,")  # outliers
    out_only = [f"i-1,{_when(hour)},,,,{hour * 2}" for hour in range(0, 24 * 10, 7)]
    out_only += [f"i-5,{_when(hour)},,,,{hour}" for hour in range(0, 24 * 10, 5)]
    return [
        _write(tmp_path / "main.csv", header, main),
        _write(tmp_path / "out.csv", "resource_id,timestamp,cpu,network,read_iops,network_out", []),
        _write(
            tmp_path / "network-out.csv",
            "resource_id,timestamp,cpu,network,read_iops,network_out",
            out_only,
        ),
        # An overlapping export: part of main.csv again (its rows count again, as samples do).
        _write(tmp_path / "again.csv", header, main[: len(main) // 3]),
    ]


def _by_samples(data: module.UtilizationData) -> pl.DataFrame:
    samples = pl.concat([piece.samples() for piece in data.pieces])
    return module._aggregate(samples, END, window_days=30)


@pytest.mark.parametrize("bucket_samples", [module.BUCKET_SAMPLES, 40])
def test_wide_rows_give_the_figures_of_their_samples(
    files: list[InputFile], bucket_samples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BUCKET_SAMPLES", bucket_samples)
    data = module.read_utilization(files)
    assert module._wide_metrics(data.pieces) is not None
    wide = module.aggregate_utilization(
        data.samples, END, window_days=30, count=data.count, pieces=data.pieces
    )
    expected = _by_samples(data)
    assert wide["resource_id"].to_list() == ["i-1", "i-2", "i-3", "i-4", "i-5"]
    # Means and sums may differ in the last bits (the order of additions), nothing else.
    assert_frame_equal(wide, expected, check_exact=False, rel_tol=1e-12, abs_tol=0.0)
    # Quantiles, maxima and counts are the same numbers; only i-1's network adds three cells
    # at one time (in, out, and out again from another file), in another order.
    exact = [name for name in wide.columns if not name.endswith(("_avg", "_sum"))]
    others = pl.col("resource_id") != "i-1"
    assert_frame_equal(
        wide.filter(others).select(exact), expected.filter(others).select(exact), check_exact=True
    )
    i3 = wide.row(2, named=True)
    assert i3["mem_avg"] is not None
    assert i3["iops_avg"] is None
    assert wide.row(0, named=True)["mem_avg"] is None


def test_two_columns_of_one_averaged_metric_are_aggregated_as_samples(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "m.csv",
        "resource_id,timestamp,cpu,CPUUtilization",
        [f"i-1,{_when(1)},10,20", f"i-1,{_when(2)},30,"],
    )
    data = module.read_utilization([path])
    assert module._wide_metrics(data.pieces) is None
    facts = module.aggregate_utilization(
        data.samples, END, window_days=30, count=data.count, pieces=data.pieces
    )
    assert facts.row(0, named=True)["cpu_avg"] == pytest.approx(20.0)
    assert facts.row(0, named=True)["samples"] == 3
