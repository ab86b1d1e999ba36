"""A generated bill with 1% poisoned rows collects to the clean bill's costs, every one reported.

The poison is what real exports carry: rows dated 2099, decimal commas, non-finite amounts,
exact duplicates, and an older month-to-date run of the same billing period beside the latest.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from reclaim.ingest import collect_facts, generate_sample

_COSTS = ["cost_30d", "billed_cost_30d", "list_cost_30d", "cost_7d"]


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    files = generate_sample(tmp_path_factory.mktemp("gen"), resources=60, days=40, seed=11)
    frame = pl.concat([pl.read_parquet(p) for p in sorted(files.billing.glob("*.parquet"))])
    # As text, the way a CSV export carries every value.
    return frame.select(pl.all().cast(pl.String))


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path


def _poison(clean: pl.DataFrame, rng: random.Random) -> tuple[pl.DataFrame, dict[int, str]]:
    """The clean rows with 1% poisoned rows inserted; returns (rows, row number → poison)."""
    rows = clean.to_dicts()
    count = max(10, len(rows) // 100)
    # Duplicates are looked for where amounts count, the 30-day cost window.
    starts = clean["ChargePeriodStart"].str.to_datetime(time_zone="UTC")
    cutoff = starts.dt.offset_by("-29d").max()
    window = [i for i, start in enumerate(starts) if start >= cutoff]
    kinds = ["future", "comma", "infinite", "duplicate"]
    inserts: list[tuple[int, dict[str, str | None], str]] = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        source = rng.choice(window) if kind == "duplicate" else rng.randrange(len(rows))
        row = dict(rows[source])
        if kind == "future":
            row["ChargePeriodStart"] = "2099-01-01 00:00:00"
            row["ChargePeriodEnd"] = "2099-01-02 00:00:00"
        elif kind == "comma":
            row["BilledCost"] = row["EffectiveCost"] = "1,50"
        elif kind == "infinite":
            row["EffectiveCost"] = rng.choice(["inf", "1e400", "-Infinity"])
        # A duplicate goes after its original, anywhere later in the file.
        at = rng.randrange(source + 1, len(rows) + 1) if kind == "duplicate" else None
        inserts.append((at if at is not None else rng.randrange(len(rows) + 1), row, kind))
    poisoned: list[dict[str, str | None]] = []
    where: dict[int, str] = {}
    by_position: dict[int, list[tuple[dict[str, str | None], str]]] = {}
    for at, row, kind in inserts:
        by_position.setdefault(at, []).append((row, kind))
    for index in range(len(rows) + 1):
        for row, kind in by_position.get(index, []):
            poisoned.append(row)
            where[len(poisoned)] = kind
        if index < len(rows):
            poisoned.append(rows[index])
    return pl.DataFrame(poisoned, schema=clean.schema), where


def test_poisoned_bill_collects_to_the_clean_costs(
    clean_rows: pl.DataFrame, tmp_path: Path
) -> None:
    clean = _write(clean_rows, tmp_path / "clean" / "run-2" / "part-0.csv")
    poisoned_rows, poison = _poison(clean_rows, random.Random(3))
    poisoned = _write(poisoned_rows, tmp_path / "export" / "run-2" / "part-0.csv")
    # An earlier month-to-date run of the last billing period, with estimates since restated.
    month = pl.col("ChargePeriodStart").str.slice(0, 7)
    last_month = clean_rows.filter(month == month.max())
    earlier = last_month.filter(pl.col("ChargePeriodEnd") < pl.col("ChargePeriodEnd").max())
    earlier = earlier.with_columns((pl.col("EffectiveCost").cast(pl.Float64) * 1.5).cast(pl.String))
    assert earlier.height
    older_run = _write(earlier, tmp_path / "export" / "run-1" / "part-0.csv")

    expected = collect_facts([clean])
    got = collect_facts([tmp_path / "export"])

    assert got.report.as_of == expected.report.as_of
    assert got.facts["resource_id"].to_list() == expected.facts["resource_id"].to_list()
    for column in _COSTS:
        assert got.facts[column].to_list() == pytest.approx(expected.facts[column].to_list())
    assert got.report.unattributed_cost == pytest.approx(expected.report.unattributed_cost)
    assert expected.report.bad_rows == 0

    reports = {Path(f.path): f for f in got.report.files}
    assert reports[older_run].superseded == earlier.height
    assert reports[older_run].superseded_by == str(poisoned.parent)
    assert reports[poisoned].bad_rows == len(poison)
    assert len(poison) >= poisoned_rows.height // 101
    reported = {s.row: s.reason for s in reports[poisoned].samples if s.dropped}
    assert set(reported) == set(poison)
    expected_words = {
        "future": "2099",
        "comma": "has a comma",
        "infinite": "not a finite number",
        "duplicate": "exact duplicate of",
    }
    for row, kind in poison.items():
        assert expected_words[kind] in reported[row], (row, kind, reported[row])
