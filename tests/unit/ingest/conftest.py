from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from reclaim.ingest import generate_sample
from reclaim.ingest.files import FileFormat, InputFile

HEADER = (
    "BilledCost,EffectiveCost,ListCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ResourceType,"
    "ServiceName,ServiceCategory,BillingCurrency,SubAccountId,RegionId,ProviderName,Tags,x_Custom"
)


def focus_row(
    cost: str = "1.0",
    *,
    effective: str | None = None,
    start: str = "2026-10-30 00:00:00",
    end: str = "2026-10-31 00:00:00",
    resource: str = "i-1",
    rtype: str = "instance",
    service: str = "Amazon Elastic Compute Cloud",
    category: str = "Compute",
    region: str = "us-east-1",
    tags: str = '"{""owner"": ""payments""}"',
    listed: str | None = None,
) -> str:
    effective = cost if effective is None else effective
    listed = cost if listed is None else listed
    return (
        f"{cost},{effective},{listed},{start},{end},{resource},{rtype},{service},{category},USD,"
        f"111,{region},AWS,{tags},whatever"
    )


WriteFocus = Callable[..., Path]


def daily_charge(start: datetime, day: int) -> dict[str, Any]:
    """The columns every row of a crafted daily EC2 bill shares, ``day`` days after ``start``."""
    return {
        "ChargePeriodStart": (start + timedelta(days=day)).strftime("%Y-%m-%d %H:%M:%S"),
        "ChargePeriodEnd": (start + timedelta(days=day + 1)).strftime("%Y-%m-%d %H:%M:%S"),
        "ServiceName": "Amazon Elastic Compute Cloud",
        "BillingCurrency": "USD",
        "ProviderName": "AWS",
        "BillingAccountId": "111",
        "SubAccountId": "222",
    }


@pytest.fixture
def write_focus(tmp_path: Path) -> WriteFocus:
    """Write a FOCUS CSV with the given data rows (strings) and return its path."""

    def write(*rows: str, name: str = "bill.csv", header: str = HEADER) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def excerpt() -> Path:
    return Path(__file__).with_name("data") / "focus_excerpt.csv"


def monthly_bill(
    generated: Path, folder: Path, *, resources: int, days: int, seed: int
) -> list[InputFile]:
    """A generated bill rewritten as one Parquet file per month of charges, in order."""
    sample = generate_sample(generated, resources=resources, days=days, seed=seed)
    rows = pl.concat([pl.read_parquet(p) for p in sorted(sample.billing.glob("*.parquet"))])
    month = pl.col("ChargePeriodStart").cast(pl.String).str.slice(0, 7)
    files = []
    for name in sorted(rows.select(month.unique()).to_series().to_list()):
        path = folder / f"{name}.parquet"
        rows.filter(month == name).write_parquet(path)
        files.append(InputFile(path, FileFormat.PARQUET))
    return files


def count_reads(monkeypatch: pytest.MonkeyPatch, paths: Sequence[Path]) -> collections.Counter[str]:
    """How many queries read each file, by name, from now on: a ``collect``, a
    ``collect_batches``, or each query of a ``collect_all`` whose plan names it (Polars shares
    the scans of one ``collect_all``, but each query still names its files)."""
    reads: collections.Counter[str] = collections.Counter()

    def count(frame: pl.LazyFrame) -> None:
        plan = frame.explain(optimized=False)
        for path in paths:
            if str(path) in plan:
                reads[path.name] += 1

    collect: Callable[..., pl.DataFrame] = pl.LazyFrame.collect
    collect_all: Callable[..., list[pl.DataFrame]] = pl.collect_all
    batches: Callable[..., Iterator[pl.DataFrame]] = pl.LazyFrame.collect_batches

    def counted_collect(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        count(self)
        return collect(self, *args, **kwargs)

    def counted_collect_all(
        frames: Sequence[pl.LazyFrame], *args: object, **kwargs: object
    ) -> list[pl.DataFrame]:
        for frame in frames:
            count(frame)
        return collect_all(frames, *args, **kwargs)

    def counted_batches(
        self: pl.LazyFrame, *args: object, **kwargs: object
    ) -> Iterator[pl.DataFrame]:
        count(self)
        return batches(self, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", counted_collect)
    monkeypatch.setattr(pl, "collect_all", counted_collect_all)
    monkeypatch.setattr(pl.LazyFrame, "collect_batches", counted_batches)
    return reads
