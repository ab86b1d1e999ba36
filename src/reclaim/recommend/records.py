"""What the recommendations store returns: recommendations, observations and runs."""

from __future__ import annotations

__all__ = [
    "ObservationRecord",
    "RecommendationRecord",
    "RunRecord",
    "record_of",
    "replace_run",
    "run_values",
]

from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from reclaim.recommend.lifecycle import RecommendationState, Status


@dataclass(frozen=True)
class RecommendationRecord:
    """One stored recommendation."""

    id: int
    fingerprint: str
    rule_id: str
    resource_id: str
    account_id: str | None
    resource_name: str | None
    kind: str | None
    region: str | None
    owner: str | None
    title: str | None
    status: Status
    monthly_savings: Decimal
    savings_method: str | None
    cost_30d: Decimal | None
    currency: str | None
    params: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    last_run_id: str | None
    status_changed_at: datetime
    snoozed_until: datetime | None
    ticketed_at: datetime | None
    ticket_done_at: datetime | None
    resolved_at: datetime | None
    implemented_at: datetime | None
    realized_monthly_savings: Decimal | None
    realized_method: str | None
    realized_checked_at: datetime | None
    version: int

    @property
    def state(self) -> RecommendationState:
        return RecommendationState(
            status=self.status,
            has_ticket=self.ticketed_at is not None,
            ticket_done=self.ticket_done_at is not None,
            snoozed_until=self.snoozed_until,
        )


@dataclass(frozen=True)
class ObservationRecord:
    run_id: str
    seen_at: datetime
    monthly_savings: Decimal
    savings_method: str | None
    cost_30d: Decimal | None


@dataclass(frozen=True)
class RunRecord:
    """One recommend run and what it did."""

    id: str
    started_at: datetime
    finished_at: datetime
    as_of: datetime | None
    rules: str
    rules_digest: str
    facts: int
    matched: int
    new: int
    seen_again: int
    snoozed: int
    reopened: int
    resolved: int
    implemented: int
    conflicts: int
    monthly_savings: Decimal


def record_of(row: sa.Row[Any]) -> RecommendationRecord:
    values = dict(row._mapping)
    values["status"] = Status(values["status"])
    values["params"] = values["params"] or {}
    return RecommendationRecord(**values)


def run_values(run: RunRecord) -> dict[str, Any]:
    """The run as column values of ``recommendation_runs``."""
    return {field.name: getattr(run, field.name) for field in fields(run)}


def replace_run(run: RunRecord, **changes: Any) -> RunRecord:
    return replace(run, **changes)
