"""Utilization rows grouped by resource are aggregated slice by slice, without bucket files.

When every resource's rows are next to each other (as exports and the generator write them),
``aggregate_utilization`` aggregates the rows a slice at a time as they are read
(``utilization._aggregate_in_slices``) instead of writing them to temporary buckets. The
figures must be those of the aggregation in memory; rows not so grouped (a resource again
after others, in one file or in two) must still be aggregated whole, through the buckets.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.ingest import utilization as module
from reclaim.ingest.files import FileFormat, InputFile

END = datetime(2026, 11, 1, tzinfo=UTC)
HEADER = "resource_id,timestamp,cpu,mem,network_in,network_out,read_iops,write_iops,requests"


def _rows(resource: str, seed: int) -> list[str]:
    rows = []
    for hour in range(0, 24 * 35, 5):  # some rows before the window
        when = (END - timedelta(hours=hour)).isoformat()
        cpu = (hour * seed % 97) / 3
        rows.append(
            f"{resource},{when},{cpu},{hour % 11},{hour * 1.5},{hour % 13},{hour % 5},,{seed}"
        )
    if seed % 3 == 0:
        rows.append(rows[4])  # a duplicated row: network adds up per time
    return rows


def _write(path: Path, rows: list[str]) -> InputFile:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return InputFile(path, FileFormat.CSV)


def _aggregated(files: list[InputFile]) -> pl.DataFrame:
    data = module.read_utilization(files)
    return module.aggregate_utilization(
        data.samples, END, window_days=30, count=data.count, pieces=data.pieces
    )


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "BUCKET_SAMPLES", 40)
    monkeypatch.setattr(module, "SLICE_ROWS", 50)


def _in_memory(files: list[InputFile], monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    with monkeypatch.context() as patch:
        patch.setattr(module, "BUCKET_SAMPLES", 10**9)
        return _aggregated(files)


def test_rows_grouped_by_resource_are_aggregated_without_bucket_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_slices: None
) -> None:
    first = [row for seed in (7, 3, 12) for row in _rows(f"i-{seed}", seed)]
    second = [row for seed in (5, 9) for row in _rows(f"vol-{seed}", seed)]
    files = [_write(tmp_path / "a.csv", first), _write(tmp_path / "b.csv", second)]
    expected = _in_memory(files, monkeypatch)

    def no_buckets(*args: object, **kwargs: object) -> object:
        raise AssertionError("grouped rows were written to bucket files")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", no_buckets)
    sliced = _aggregated(files)
    assert sliced["resource_id"].to_list() == ["i-12", "i-3", "i-7", "vol-5", "vol-9"]
    assert_frame_equal(sliced, expected, check_exact=True)


@pytest.mark.parametrize("where", ["same file", "other file", "interleaved"])
def test_rows_not_grouped_by_resource_still_give_whole_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_slices: None, where: str
) -> None:
    one, two, three = _rows("i-1", 7), _rows("i-2", 3), _rows("i-3", 12)
    if where == "same file":
        # i-1's rows again after other resources' slices.
        files = [_write(tmp_path / "a.csv", one[:60] + two + three + one[60:])]
    elif where == "other file":
        files = [
            _write(tmp_path / "a.csv", one[:60] + two),
            _write(tmp_path / "b.csv", three + one[60:]),
        ]
    else:
        mixed = [row for pair in zip(one, two, strict=False) for row in pair] + three
        files = [_write(tmp_path / "a.csv", mixed)]
    expected = _in_memory(files, monkeypatch)
    assert expected.height == 3
    assert_frame_equal(_aggregated(files), expected, check_exact=False, rel_tol=1e-12)
