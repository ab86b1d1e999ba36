"""The API's response bodies (they are also its OpenAPI schema). Money is an exact decimal
string, never a float; times are ISO 8601 in UTC."""

from __future__ import annotations

__all__ = [
    "ExplanationOut",
    "ItemSummary",
    "ObservationOut",
    "RecommendationDetail",
    "RecommendationOut",
    "RecommendationPage",
    "RunDetail",
    "RunOut",
    "StepOut",
    "SyncHealthOut",
    "TicketOut",
    "TicketPage",
    "TotalOut",
    "Totals",
]

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RecommendationOut(_Out):
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
    status: str
    monthly_savings: Decimal
    savings_method: str | None
    cost_30d: Decimal | None
    currency: str | None
    params: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    status_changed_at: datetime
    snoozed_until: datetime | None
    ticketed_at: datetime | None
    ticket_done_at: datetime | None
    implemented_at: datetime | None
    realized_monthly_savings: Decimal | None


class RecommendationPage(BaseModel):
    items: list[RecommendationOut]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""


class ObservationOut(_Out):
    run_id: str
    seen_at: datetime
    monthly_savings: Decimal
    savings_method: str | None
    cost_30d: Decimal | None


class TicketOut(_Out):
    id: int
    fingerprint: str
    state: str
    system: str
    project: str
    key: str | None
    issue_id: str | None
    url: str | None
    status: str | None
    status_category: str | None
    resolution: str | None
    intent_at: datetime
    created_at: datetime | None
    last_synced_at: datetime | None
    attempts: int
    recommendation_id: int | None


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_after: int | None
    """Pass as ``after`` for the next page; null on the last page."""


class ExplanationOut(BaseModel):
    text: str
    detail: dict[str, Any]


class RecommendationDetail(BaseModel):
    recommendation: RecommendationOut
    observations: list[ObservationOut]
    ticket: TicketOut | None
    explanation: ExplanationOut | None
    explanation_missing: str | None
    """Why there is no explanation (no facts yet, resource gone, rule not in the pack)."""


class TotalOut(_Out):
    key: str | None
    currency: str | None
    count: int
    monthly_savings: Decimal


class Totals(BaseModel):
    by: str
    groups: list[TotalOut]


class RunOut(_Out):
    id: str
    workflow: str
    version: str
    status: str
    error: str | None
    attempts: int
    max_attempts: int
    owner: str | None
    lease_expires_at: datetime | None
    dedupe_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class StepOut(_Out):
    step: str
    item_key: str
    status: str
    attempts: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


class ItemSummary(BaseModel):
    step: str
    by_status: dict[str, int]
    """The step's map items counted by status."""
    unit: Literal["item", "ticket chunk"] = "item"
    """What one item is: the ticket steps checkpoint one item per chunk of up to 50 tickets."""
    tickets_by_status: dict[str, int] | None = None
    """For chunks of tickets: the tickets in the chunks, by the chunk's status."""


class RunDetail(BaseModel):
    run: RunOut
    steps: list[StepOut]
    """Plain steps, in the order they started."""
    items: list[StepOut]
    """Map items (``item_key`` set), at most ``items_limit`` of them."""
    item_summary: list[ItemSummary]
    """Every map step's items counted by status, however many there are."""


class CursorOut(_Out):
    source: str
    cursor_at: datetime
    lag_seconds: float
    updated_at: datetime


class SyncHealthOut(_Out):
    cursors: list[CursorOut]
    tickets_by_state: dict[str, int]
    tickets_by_status_category: dict[str, int]
    open_intents: int
    oldest_intent_at: datetime | None
    last_synced_at: datetime | None
    checked_at: datetime
