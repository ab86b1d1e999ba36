"""Billing figures that must not change silently: bad values, stray dates, restated exports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from reclaim.errors import ConfigError
from reclaim.ingest import collect_facts

from .conftest import HEADER, WriteFocus, focus_row


def _month(resource: str = "vm-1", daily: str = "5", days: int = 30) -> list[str]:
    """``days`` daily rows ending 2026-10-31 at ``daily`` a day."""
    end = datetime(2026, 10, 31)
    rows = []
    for back in range(days, 0, -1):
        start = end - timedelta(days=back)
        rows.append(
            focus_row(
                daily,
                resource=resource,
                start=f"{start:%Y-%m-%d %H:%M:%S}",
                end=f"{start + timedelta(days=1):%Y-%m-%d %H:%M:%S}",
            )
        )
    return rows


def costs(path: Path | list[Path], **kwargs: object) -> dict[str, float]:
    paths = path if isinstance(path, list) else [path]
    facts = collect_facts(paths, **kwargs).facts  # type: ignore[arg-type]
    return {rid: round(cost, 6) for rid, cost in facts.select("resource_id", "cost_30d").rows()}


# --- item 1: one far-future row must not move the window ------------------------------------


def test_one_far_future_row_is_an_outlier_not_the_window(write_focus: WriteFocus) -> None:
    future = focus_row("5", resource="vm-1", start="2099-01-01 00:00:00", end="2099-01-02 00:00:00")
    path = write_focus(*_month("vm-1"), *_month("vol-1", "1"), future)
    collection = collect_facts([path])
    assert collection.report.as_of == datetime(2026, 10, 31, tzinfo=UTC)
    assert costs(path) == {"vm-1": 150.0, "vol-1": 30.0}
    [bad] = collection.report.samples()
    assert bad.row == 61
    assert bad.dropped
    assert "2099-01-01" in bad.reason or "2099-01-02" in bad.reason
    assert collection.report.bad_rows == 1
    assert collection.facts.filter(pl.col("resource_id") == "vm-1")["last_seen"].item() == (
        datetime(2026, 10, 31, tzinfo=UTC)
    )


def test_end_far_after_a_normal_start_is_an_outlier(write_focus: WriteFocus) -> None:
    stretched = focus_row("5", resource="vm-1", start="2026-10-30 00:00:00", end="2099-12-31")
    path = write_focus(*_month("vm-1"), stretched)
    assert costs(path) == {"vm-1": 150.0}


def test_a_stray_row_a_few_days_late_does_not_slide_the_window(write_focus: WriteFocus) -> None:
    rows = [*_month("a"), *_month("b"), *_month("c"), *_month("d")]
    late = focus_row("5", resource="a", start="2026-11-20 00:00:00", end="2026-11-21 00:00:00")
    path = write_focus(*rows, late)
    collection = collect_facts([path])
    assert collection.report.as_of == datetime(2026, 10, 31, tzinfo=UTC)
    assert costs(path) == {"a": 150.0, "b": 150.0, "c": 150.0, "d": 150.0}


def test_explicit_as_of_in_the_past_keeps_later_history(write_focus: WriteFocus) -> None:
    path = write_focus(*_month("vm-1"))
    collection = collect_facts([path], as_of=datetime(2026, 8, 1, tzinfo=UTC))
    assert collection.report.bad_rows == 0


# --- item 4: values that are not amounts ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"1,50"', "BilledCost has a comma"),
        ('"1,500.00"', "BilledCost has a comma"),
        ("inf", "BilledCost is not a finite number"),
        ("1e400", "BilledCost is not a finite number"),
        ("-Infinity", "BilledCost is not a finite number"),
    ],
)
def test_non_amounts_are_bad_rows(write_focus: WriteFocus, value: str, reason: str) -> None:
    path = write_focus(focus_row("2", resource="a"), focus_row(value, effective="1", resource="b"))
    collection = collect_facts([path])
    [bad] = collection.report.samples()
    assert (bad.path, bad.row) == (str(path), 2)
    assert bad.reason.startswith(reason)
    assert costs(path) == {"a": 2.0}
    assert collection.facts["cost_30d"].is_finite().all()


def test_non_finite_parquet_amount_is_a_bad_row(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "BilledCost": [1.0, float("inf")],
            "EffectiveCost": [1.0, float("-inf")],
            "ChargePeriodStart": ["2026-10-30"] * 2,
            "ChargePeriodEnd": ["2026-10-31"] * 2,
            "ResourceId": ["a", "b"],
            "ServiceName": ["EC2"] * 2,
            "BillingCurrency": ["USD"] * 2,
        }
    )
    path = tmp_path / "bill.parquet"
    frame.write_parquet(path)
    collection = collect_facts([path])
    assert collection.report.bad_rows == 1
    assert costs(path) == {"a": 1.0}


def test_latin1_bytes_are_a_bad_row_not_a_new_resource(tmp_path: Path) -> None:
    path = tmp_path / "bill.csv"
    good = focus_row("1", resource="vm-ok")
    mangled = focus_row("2", resource="vm-caf\u00e9")
    path.write_bytes(f"{HEADER}\n{good}\n".encode() + f"{mangled}\n".encode("latin-1"))
    collection = collect_facts([path])
    assert costs(path) == {"vm-ok": 1.0}
    [bad] = collection.report.samples()
    assert bad.row == 2
    assert "UTF-8" in bad.reason


def test_truncated_row_is_bad_not_unattributed(write_focus: WriteFocus) -> None:
    cut = ",".join(focus_row("9", resource="b").split(",")[:5])  # ends after ChargePeriodEnd
    path = write_focus(focus_row("1", resource="a"), cut)
    collection = collect_facts([path])
    assert collection.report.unattributed_cost == 0.0
    [bad] = collection.report.samples()
    assert bad.row == 2
    assert "truncated" in bad.reason


def test_file_whose_rows_are_all_bad_is_an_error(write_focus: WriteFocus) -> None:
    path = write_focus(focus_row("abc", resource="a"), focus_row("inf", resource="b"))
    with pytest.raises(ConfigError) as caught:
        collect_facts([path])
    message = str(caught.value)
    assert str(path) in message
    assert "every row" in message


@pytest.mark.parametrize(("separator", "said"), [(";", "semicolons"), ("\t", "tabs")])
def test_other_delimiters_say_so(tmp_path: Path, separator: str, said: str) -> None:
    path = tmp_path / "bill.csv"
    header = HEADER.replace(",", separator)
    path.write_text(header + "\n" + focus_row().replace(",", separator) + "\n")
    with pytest.raises(ConfigError, match=said):
        collect_facts([path])


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("identity/LineItemId,lineItem/UnblendedCost,lineItem/ResourceId", "an AWS CUR"),
        ("line_item_resource_id,line_item_unblended_cost", "an AWS CUR"),
        ("SubscriptionGuid,MeterCategory,PreTaxCost,InstanceId", "an Azure cost export"),
    ],
)
def test_foreign_exports_are_named(tmp_path: Path, header: str, said: str) -> None:
    path = tmp_path / "bill.csv"
    path.write_text(header + "\n" + ",".join("1" for _ in header.split(",")) + "\n")
    with pytest.raises(ConfigError, match=f"this looks like {said}.*export FOCUS or convert"):
        collect_facts([path])


def test_pre_1_0_provider_column_is_read(write_focus: WriteFocus) -> None:
    path = write_focus(focus_row(), header=HEADER.replace("ProviderName", "Provider"))
    assert collect_facts([path]).facts["provider"].to_list() == ["aws"]


# --- item 2: restated exports and duplicate rows -------------------------------------------

PERIOD_HEADER = HEADER + ",BillingPeriodStart,BillingAccountId"


def _run(rows: list[str], period: str = "2026-10-01", account: str = "B1") -> list[str]:
    return [f"{row},{period},{account}" for row in rows]


def test_overlapping_month_to_date_runs_count_once(write_focus: WriteFocus) -> None:
    # Run 1 saw ten days of October; run 2 restates the month with twenty days. The bill is
    # the latest run alone.
    first = _run(_month("vm-1", days=30)[:10])
    second = _run(_month("vm-1", days=30)[:20])
    older = write_focus(*first, name="export/run-1/part-0.csv", header=PERIOD_HEADER)
    newer = write_focus(*second, name="export/run-2/part-0.csv", header=PERIOD_HEADER)
    collection = collect_facts([older.parent.parent])
    assert costs(older.parent.parent) == {"vm-1": 100.0}
    report = {Path(f.path): f for f in collection.report.files}
    assert report[older].superseded == 10
    assert report[older].superseded_by == str(newer.parent)
    assert report[newer].superseded == 0


def test_runs_of_other_sub_accounts_are_not_superseded(write_focus: WriteFocus) -> None:
    header = HEADER.replace("SubAccountId", "Sub") + ",BillingPeriodStart,BillingAccountId"
    header = header.replace(",Sub,", ",SubAccountId,")
    a = write_focus(*_run(_month("vm-a")), name="export/sub-a/part.csv", header=header)
    b_rows = [row.replace(",111,", ",222,") for row in _run(_month("vm-b"))]
    write_focus(*b_rows, name="export/sub-b/part.csv", header=header)
    assert costs(a.parent.parent) == {"vm-a": 150.0, "vm-b": 150.0}


def test_other_billing_periods_of_an_older_run_still_count(write_focus: WriteFocus) -> None:
    september = _run(
        [focus_row("7", resource="vm-1", start="2026-09-30 00:00:00", end="2026-10-01")],
        period="2026-09-01",
    )
    older = write_focus(
        *september, *_run(_month("vm-1")[:10]), name="x/run-1/p.csv", header=PERIOD_HEADER
    )
    write_focus(*_run(_month("vm-1")), name="x/run-2/p.csv", header=PERIOD_HEADER)
    collection = collect_facts([older.parent.parent])
    assert costs(older.parent.parent) == {"vm-1": 150.0}
    # September was delivered by run 1 only: it still counts (first seen then).
    assert collection.facts["first_seen"].to_list() == [datetime(2026, 9, 30, tzinfo=UTC)]
    [older_report] = [f for f in collection.report.files if f.path == str(older)]
    assert older_report.superseded == 10


def test_exact_duplicate_rows_count_once_and_are_reported(write_focus: WriteFocus) -> None:
    rows = _month("vm-1")
    path = write_focus(
        *rows, rows[4], focus_row("3", resource="NULL"), focus_row("3", resource="NULL")
    )
    collection = collect_facts([path])
    assert costs(path) == {"vm-1": 150.0}
    assert collection.report.unattributed_cost == pytest.approx(3.0)
    reasons = {s.row: s.reason for s in collection.report.samples()}
    assert reasons == {
        31: f"exact duplicate of {path}:row 5",
        33: f"exact duplicate of {path}:row 32",
    }
    assert collection.report.bad_rows == 2


def test_rows_differing_in_an_unread_column_are_not_duplicates(write_focus: WriteFocus) -> None:
    row = focus_row("2", resource="vm-1")
    path = write_focus(row, row.replace("whatever", "other-sku"))
    assert costs(path) == {"vm-1": 4.0}
