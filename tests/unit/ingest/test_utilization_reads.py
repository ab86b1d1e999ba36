"""Utilization files are read once when the window's end is known before they are read.

``collect_facts`` reads the bill first, which says where the window ends; then each wide
utilization file grouped by resource is checked (rows, bad rows, good samples) and aggregated
in the same read (``utilization.read_and_aggregate``). It used to be read once to be checked
and again to be aggregated. The figures and the report must be those of the two reads.
"""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.ingest import bundled_sample, collect_facts, collector
from reclaim.ingest import utilization as module
from reclaim.ingest.files import FileFormat, InputFile

from .conftest import count_reads

END = datetime(2026, 11, 1, tzinfo=UTC)
HEADER = "resource_id,timestamp,cpu,mem,network_in,network_out,read_iops,requests"


def _rows(resource: str, seed: int) -> list[str]:
    rows = []
    for hour in range(0, 24 * 35, 7):  # some rows before the window
        when = (END - timedelta(hours=hour)).isoformat()
        cpu = f"{hour * seed % 97 / 3}" if hour % 50 else "abc"  # a few unreadable cells
        rows.append(f"{resource},{when},{cpu},{hour % 11},{hour * 1.5},{hour % 13},{seed},")
    rows.append(f",{END.isoformat()},1,2,3,4,5,6")  # no resource: a bad row
    if seed % 3 == 0:
        rows.append(rows[4])  # a duplicated row: network adds up per time
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _two_steps(paths: Sequence[Path]) -> tuple[module.UtilizationData, pl.DataFrame]:
    files = [InputFile(path, FileFormat.CSV) for path in paths]
    data = module.read_utilization(files, hashes={path: path.name for path in paths})
    figures = module.aggregate_utilization(
        data.samples, END, window_days=30, count=data.count, pieces=data.pieces
    )
    return data, figures


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "BUCKET_SAMPLES", 40)
    monkeypatch.setattr(module, "SLICE_ROWS", 50)
    monkeypatch.setattr(module, "SAMPLES_PER_FILE", 3)  # the first bad rows span batches


def _usage(facts: pl.DataFrame) -> pl.DataFrame:
    return facts.select("resource_id", *module.UTILIZATION_COLUMNS)


@pytest.mark.parametrize("batch", [50, 1_000_000])
def test_grouped_files_are_read_once_with_the_figures_and_report_of_two_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_slices: None, batch: int
) -> None:
    monkeypatch.setattr(module, "SLICE_ROWS", batch)
    first = [row for seed in (7, 3, 12) for row in _rows(f"i-{seed}", seed)]
    second = [row for seed in (5, 9) for row in _rows(f"vol-{seed}", seed)]
    paths = [_write(tmp_path / "a.csv", first), _write(tmp_path / "b.csv", second)]
    data, figures = _two_steps(paths)
    assert data.files[0].bad_rows > 3  # more bad rows than are listed
    reads = count_reads(monkeypatch, paths)
    collection = collect_facts(utilization=paths, as_of=END)
    assert reads == {"a.csv": 1, "b.csv": 1}, reads
    monkeypatch.undo()
    assert_frame_equal(_usage(collection.facts), figures, check_exact=True)
    hashed = [dataclasses.replace(report, sha256="") for report in collection.report.files]
    assert hashed == [dataclasses.replace(report, sha256="") for report in data.files]


@pytest.mark.parametrize("where", ["same file", "other file"])
def test_files_not_grouped_by_resource_give_the_figures_and_report_of_two_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_slices: None, where: str
) -> None:
    one, two, three = _rows("i-1", 7), _rows("i-2", 3), _rows("i-3", 12)
    if where == "same file":
        paths = [_write(tmp_path / "a.csv", one[:60] + two + three + one[60:])]
    else:
        paths = [
            _write(tmp_path / "a.csv", one[:60] + two),
            _write(tmp_path / "b.csv", three + one[60:]),
        ]
    data, figures = _two_steps(paths)
    collection = collect_facts(utilization=paths, as_of=END)
    assert_frame_equal(_usage(collection.facts), figures, check_exact=False, rel_tol=1e-12)
    hashed = [dataclasses.replace(report, sha256="") for report in collection.report.files]
    assert hashed == [dataclasses.replace(report, sha256="") for report in data.files]


def test_every_part_is_freed_once_placed_beside_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bill's, the inventory's and the utilization's per-resource tables are freed as the
    facts are joined (at a million resources each held past its placing raised the peak)."""
    alive: list[list[bool]] = []
    side_by_side = collector._side_by_side

    def watched(parts: list[pl.DataFrame]) -> pl.DataFrame:
        refs = [weakref.ref(part) for part in parts]
        joined = side_by_side(parts)
        gc.collect()
        alive.append([ref() is not None for ref in refs])
        return joined

    monkeypatch.setattr(collector, "_side_by_side", watched)
    sample = bundled_sample()
    collection = collect_facts([sample.billing], [sample.inventory], [sample.utilization])
    assert collection.facts.height
    assert alive == [[False, False, False]]  # bill, inventory, utilization
