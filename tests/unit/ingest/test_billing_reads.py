"""Each billing file group is read as few times as the figures need.

After the survey (which finds the window), one read of each file group gives the
per-resource sums, the commitments' sums and the keys duplicates are looked for by; then only
the files holding a resource's latest row are read again, for its attributes and tags. The
duplicate keys used to take a read of their own, a third of the passes over the bill.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.ingest import focus
from reclaim.ingest.files import InputFile

from .conftest import count_reads, monthly_bill


@pytest.fixture(scope="module")
def bill(tmp_path_factory: pytest.TempPathFactory) -> list[InputFile]:
    files = monthly_bill(
        tmp_path_factory.mktemp("gen"),
        tmp_path_factory.mktemp("bill"),
        resources=30,
        days=70,
        seed=5,
    )
    assert len(files) >= 3
    return files


def test_each_group_is_read_once_after_the_survey(
    bill: list[InputFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(focus, "GROUP_ROWS", 1)  # every file a group of its own
    hashes = {file.path: file.path.name for file in bill}
    expected = focus.read_billing(bill, hashes=hashes)
    reads = count_reads(monkeypatch, [file.path for file in bill])
    data = focus.read_billing(bill, hashes=hashes)
    monkeypatch.undo()
    assert_frame_equal(data.per_resource, expected.per_resource)
    footer = 1  # the rows of a Parquet file, from its footer, to form the groups
    survey = 3  # per-file counts, good rows per day, the first bad rows
    sums = 2  # the per-resource sums (and duplicate keys), the commitments' sums
    # The first month holds no resource's latest row; the last month holds most: they are
    # read once more for the attributes and tags.
    assert reads[bill[0].path.name] == footer + survey + sums, reads
    assert reads[bill[-1].path.name] == footer + survey + sums + 1, reads


def test_the_running_total_is_grouped_by_hashes_of_the_ids_not_their_text(
    bill: list[InputFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file group's rows are grouped with the running per-resource total: by two 64-bit
    hashes of the id, since hashing and copying a million ids' text at every group was half
    of the sums' CPU. The ids, taken back from the latest rows, are the same."""
    monkeypatch.setattr(focus, "GROUP_ROWS", 1)
    monkeypatch.setattr(focus, "FOLD_ROWS", 1)  # the total grouped again with every group
    folds, numbers = _folds(monkeypatch, bill)
    assert len(folds) == len(bill)
    assert not [plan for plan in folds if 'BY [col("resource_id")]' in plan]
    assert numbers.height == 30
    data = focus.read_billing(bill, hashes={file.path: file.path.name for file in bill})
    assert data.per_resource["resource_id"].n_unique() == 30
    assert data.per_resource["resource_id"].is_sorted()


def _folds(
    monkeypatch: pytest.MonkeyPatch, bill: list[InputFile]
) -> tuple[list[str], pl.DataFrame]:
    """The plans of ``_sums``'s groupings of the running total, and its figures."""
    hashes = {file.path: file.path.name for file in bill}
    as_of = focus.read_billing(bill, hashes=hashes).as_of
    assert as_of is not None
    plans: list[str] = []
    collect: Callable[..., pl.DataFrame] = pl.LazyFrame.collect

    def recorded(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        plans.append(self.explain(optimized=False))
        return collect(self, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", recorded)
    sums = focus._sums(
        [focus.scan_billing_file(file, index).rows for index, file in enumerate(bill)],
        [[index] for index in range(len(bill))],
        as_of,
        has_commitments=False,
    )
    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    folds = [plan for plan in plans if "AGGREGATE" in plan and "first_seen" in plan]
    return folds, sums.numbers.sort("_id1", "_id2")


def test_the_running_total_is_grouped_again_once_per_fold_rows_not_per_group(
    bill: list[InputFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regrouping a million resources' total with every two-million-row group was most of
    the sums' CPU: the groups' rows wait until they reach ``FOLD_ROWS``. The figures are
    the same either way."""
    monkeypatch.setattr(focus, "GROUP_ROWS", 1)
    monkeypatch.setattr(focus, "FOLD_ROWS", 1)
    every_group, expected = _folds(monkeypatch, bill)
    assert len(every_group) == len(bill)
    monkeypatch.setattr(focus, "FOLD_ROWS", 10**12)
    once, figures = _folds(monkeypatch, bill)
    assert len(once) == 1
    assert_frame_equal(figures, expected, check_exact=False, rel_tol=1e-12)
