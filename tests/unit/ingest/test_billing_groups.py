"""Billing files read a group at a time give the same facts and report as one pass over all.

The per-resource sums, first and last seen, the survey, restated runs and duplicates are
computed per file group and combined (``reclaim.ingest.focus.GROUP_ROWS``), so that memory
follows one group and not the history. Combining must not change a figure: a multi-month bill
with a restated month, duplicates across months, an outlier and a bad row is collected with
every file in one group (one pass, as before) and with every file alone.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from reclaim.ingest import Collection, collect_facts, focus, generate_sample
from reclaim.ingest.files import FileFormat, InputFile


@pytest.fixture(scope="module")
def bill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four months of two runs: run-1 holds July to early October by month, run-2 restates
    October; copies of window rows sit in other months' files; one row dated 2099; one row
    with a decimal comma."""
    files = generate_sample(tmp_path_factory.mktemp("gen"), resources=40, days=100, seed=14)
    rows = pl.concat([pl.read_parquet(p) for p in sorted(files.billing.glob("*.parquet"))])
    rows = rows.select(pl.all().cast(pl.String))
    month = pl.col("ChargePeriodStart").str.slice(0, 7)
    months = sorted(rows.select(month.unique()).to_series().to_list())
    assert len(months) >= 4
    last = months[-1]
    out = tmp_path_factory.mktemp("bill") / "export"
    last_rows = rows.filter(month == last)
    # Copies of rows of the cost window (where duplicates are looked for), filed in other
    # months of the restated run (so set aside with it) and in the other file of the latest.
    copies = last_rows.filter(
        pl.col("ResourceId").is_not_null()
        & (pl.col("ChargePeriodStart") >= pl.col("ChargePeriodStart").max().str.slice(0, 8) + "10")
    ).head(7)
    for number, name in enumerate(months):
        part = rows.filter(month == name)
        if name == last:
            # The first run saw only part of the last month, with estimates since restated.
            ends = part["ChargePeriodEnd"]
            part = part.filter(pl.col("ChargePeriodEnd") < ends.sort()[ends.len() // 3])
            part = part.with_columns(
                (pl.col("EffectiveCost").cast(pl.Float64) * 1.5).cast(pl.String)
            )
        if number == 1:
            part = pl.concat([part, copies])
        if number == 2:
            poison = part.head(2).with_columns(
                pl.Series(
                    "ChargePeriodStart", ["2099-01-01 00:00:00", part[1, "ChargePeriodStart"]]
                ),
                pl.Series("ChargePeriodEnd", ["2099-01-02 00:00:00", part[1, "ChargePeriodEnd"]]),
                pl.Series("BilledCost", ["5", "1,50"]),
            )
            part = pl.concat([part, poison, copies.head(3)])
        _write(part, out / "run-1" / f"{name}.csv")
    _write(last_rows.head(last_rows.height // 2), out / "run-2" / f"{last}-a.csv")
    _write(
        pl.concat([last_rows.tail(last_rows.height - last_rows.height // 2), copies.head(5)]),
        out / "run-2" / f"{last}-b.csv",
    )
    return out


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)


def _collect(bill: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int) -> Collection:
    monkeypatch.setattr(focus, "GROUP_ROWS", group_rows)
    return collect_facts([bill])


def test_files_alone_give_the_facts_of_one_pass(
    bill: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(bill.rglob("*.csv"))
    scans = [focus.scan_billing_file(InputFile(p, FileFormat.CSV), i) for i, p in enumerate(files)]
    monkeypatch.setattr(focus, "GROUP_ROWS", 1)
    assert focus._file_groups(scans) == [[index] for index in range(len(files))]
    monkeypatch.setattr(focus, "GROUP_ROWS", 10**12)
    assert focus._file_groups(scans) == [list(range(len(files)))]

    one_pass = _collect(bill, monkeypatch, 10**12)
    alone = _collect(bill, monkeypatch, 1)

    # The bill exercises what is combined: a restated run, duplicates, an outlier, a bad row,
    # resources first seen months before the window.
    report = one_pass.report
    assert sum(f.superseded for f in report.files) > 0
    reasons = [s.reason for s in report.samples() if s.dropped]
    assert sum("exact duplicate of" in r for r in reasons) == 5
    assert any("2099" in r for r in reasons)
    assert any("has a comma" in r for r in reasons)
    first_seen = one_pass.facts["first_seen"].min()
    assert isinstance(first_seen, datetime)
    assert report.as_of is not None
    assert (report.as_of - first_seen).days > 60

    assert_frame_equal(alone.facts, one_pass.facts, check_exact=False, rel_tol=1e-9)
    assert alone.report.as_of == report.as_of
    assert alone.report.unattributed_cost == pytest.approx(report.unattributed_cost)
    assert alone.report.files == report.files
