from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
