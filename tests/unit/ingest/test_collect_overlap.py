"""The collection's reads overlap its aggregations, each of which used about one core of two.

- the bill's survey runs two file groups at a time;
- the bill's sums read the next file group while the last one is folded into the total;
- a utilization slice is aggregated while the next one is read.

Each test blocks one side until the other has started, with a timeout: done one after the
other, the wait runs out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from reclaim.ingest import focus
from reclaim.ingest import utilization as module

from .conftest import monthly_bill

WAIT = 10.0


def test_the_next_group_is_read_while_the_caller_uses_this_one() -> None:
    second_read = threading.Event()

    def read(item: int) -> int:
        if item == 1:
            second_read.set()
        return item * 10

    seen = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for result in focus._read_ahead(pool, read, [0, 1, 2]):
            if result == 0:
                assert second_read.wait(WAIT), "group 1 was not read while group 0 was used"
            seen.append(result)
    assert seen == [0, 10, 20]


def test_the_survey_runs_two_file_groups_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = monthly_bill(tmp_path / "gen", tmp_path, resources=10, days=40, seed=3)
    assert len(files) >= 2
    monkeypatch.setattr(focus, "GROUP_ROWS", 1)  # every file a group of its own
    both = threading.Barrier(2, timeout=WAIT)
    survey = focus._survey_group
    calls = []

    def together(rows: pl.LazyFrame, scans: list[focus.BillingScan]) -> object:
        calls.append(1)
        if len(calls) <= 2:
            both.wait()  # raises BrokenBarrierError when the other group does not come
        return survey(rows, scans)

    monkeypatch.setattr(focus, "_survey_group", together)
    data = focus.read_billing(files, hashes={file.path: file.path.name for file in files})
    assert data.per_resource.height == 10


def test_a_slice_is_aggregated_while_the_next_one_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "SLICE_ROWS", 4)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    next_read = threading.Event()
    overlapped = []

    def batches() -> Iterator[pl.DataFrame]:
        for resource in range(4):
            if resource == 2:
                next_read.set()
            yield pl.DataFrame(
                {
                    "resource_id": [f"i-{resource}"] * 4,
                    "timestamp": [end - timedelta(hours=hour) for hour in range(4)],
                    "cpu": [1.0, 2.0, 3.0, float(resource)],
                },
                schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
            )

    aggregate = module._aggregate_wide

    def waiting(*args: object, **kwargs: object) -> pl.DataFrame:
        if not overlapped:
            overlapped.append(next_read.wait(WAIT))
        return aggregate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_aggregate_wide", waiting)
    piece = module.SamplePiece(pl.LazyFrame(), {"cpu": "cpu"})
    wide = module._wide_metrics([piece])
    assert wide is not None
    figures = module._aggregate_in_slices([(batches(), piece)], wide)
    assert overlapped == [True], "the first slice was aggregated before the next was read"
    assert figures is not None
    assert figures["resource_id"].to_list() == ["i-0", "i-1", "i-2", "i-3"]
    assert figures["cpu_max"].to_list() == [3.0, 3.0, 3.0, 3.0]
