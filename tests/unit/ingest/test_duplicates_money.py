"""Exact duplicate rows change no figure: every facts column equals the bill's without copies.

The copies sit where they could go wrong: on a commitment's covered usage and on its unused row
(no ResourceId), on a resource's latest row whose tags are not JSON (the warning must name the
original row, not the copy), and in the second of two file groups.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reclaim.ingest import collect_facts, focus

from .conftest import daily_charge

START = datetime(2026, 10, 2, tzinfo=UTC)
SP = "arn:aws:savingsplans::111:savingsplan/sp1"
COLUMNS = [
    *("BilledCost", "EffectiveCost", "ChargePeriodStart", "ChargePeriodEnd", "ResourceId"),
    *("ResourceType", "ServiceName", "BillingCurrency", "ProviderName", "BillingAccountId"),
    *("SubAccountId", "CommitmentDiscountId", "CommitmentDiscountStatus"),
    *("CommitmentDiscountType", "CommitmentDiscountCategory", "Tags"),
]


def _rows(days: range) -> list[dict[str, Any]]:
    plan = {"CommitmentDiscountType": "Savings Plan", "CommitmentDiscountCategory": "Spend"}
    rows: list[dict[str, Any]] = []
    for day in days:
        base = daily_charge(START, day)
        rows += [
            {**base, **plan, "CommitmentDiscountStatus": "Used", "BilledCost": 0,
             "EffectiveCost": 2, "ResourceId": "i-a", "CommitmentDiscountId": SP,
             "Tags": '{"owner": "a"}'},
            {**base, **plan, "CommitmentDiscountStatus": "Unused", "BilledCost": 0,
             "EffectiveCost": 1.25, "ResourceId": "", "CommitmentDiscountId": SP},
            {**base, "BilledCost": 3, "EffectiveCost": 3, "ResourceId": "i-b",
             "Tags": '{"owner": "b"}' if day < days[-1] else "owner=b"},
            {**base, "BilledCost": 5, "EffectiveCost": 5, "ResourceId": "i-c",
             "Tags": '{"owner": "c"}'},
        ]  # fmt: skip
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("group_rows", [10_000_000, 1])
def test_copies_change_no_figure_of_any_resource_or_commitment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int
) -> None:
    monkeypatch.setattr(focus, "GROUP_ROWS", group_rows)
    early, late = _rows(range(20)), _rows(range(20, 30))
    clean = [
        _write(tmp_path / "clean" / "a.csv", early),
        _write(tmp_path / "clean" / "b.csv", late),
    ]
    # Copies of i-a's used row, of the unused row and of i-b's last row (its tags not JSON),
    # at the end of the second file; i-c is never copied.
    copies = [late[-8], late[-7], late[-2]]
    copied = [
        _write(tmp_path / "copied" / "a.csv", early),
        _write(tmp_path / "copied" / "b.csv", [*late, *copies]),
    ]
    expected = collect_facts(clean)
    got = collect_facts(copied)

    assert got.facts.columns == expected.facts.columns
    for column in got.facts.columns:
        left, right = got.facts[column], expected.facts[column]
        if left.dtype.is_float():
            assert left.is_null().equals(right.is_null()), column
            assert left.fill_null(0.0).to_list() == pytest.approx(
                right.fill_null(0.0).to_list(), rel=1e-12
            ), column
        else:
            assert left.equals(right, null_equal=True), column
    by_id = {row["resource_id"]: row for row in got.facts.iter_rows(named=True)}
    assert by_id["i-a"]["cost_30d"] == pytest.approx(60.0)
    assert by_id["i-b"]["cost_30d"] == pytest.approx(90.0)
    assert by_id[SP]["commitment_used_30d"] == pytest.approx(60.0)
    assert by_id[SP]["commitment_unused_30d"] == pytest.approx(37.5)
    assert got.report.bad_rows == 3
    assert got.report.unattributed_cost == pytest.approx(expected.report.unattributed_cost)
    second = next(f for f in got.report.files if f.path == str(copied[1]))
    dropped = sorted(s.row for s in second.samples if s.dropped)
    assert dropped == [len(late) + 1, len(late) + 2, len(late) + 3]
    warned = [s.row for s in second.samples if not s.dropped]
    # The tag warning names i-b's original last row, not its copy (the latest row read).
    assert warned == [len(late) - 1]
