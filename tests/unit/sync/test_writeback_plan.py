"""The write-back decision, as a pure function of (recommendation, ticket) rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reclaim.recommend import Status
from reclaim.sync import WriteBackSettings, plan_write_back
from reclaim.sync.writeback import ActionKind, WriteBackRow

CHANGED = datetime(2026, 12, 1, tzinfo=UTC)
SINCE = int(CHANGED.timestamp() * 1000)


def row(status: Status, category: str | None = "new", **changes: object) -> WriteBackRow:
    base = WriteBackRow(
        recommendation_id=1,
        fingerprint="f00d",
        status=status,
        status_changed_at=CHANGED,
        title="Stop idle VM",
        resource_id="i-1",
        monthly_savings=Decimal("100.00"),
        realized_monthly_savings=None,
        currency="USD",
        ticket_id=1,
        key="OPS-1",
        ticket_category=category,
        posted_savings=None,
        baseline_savings=Decimal("100.00"),
        writeback_done=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def plan(*rows: WriteBackRow) -> list[tuple[ActionKind, str, str, str | None]]:
    return [(a.kind, a.reason, a.action_id, a.resolution) for a in plan_write_back(rows)]


def test_each_status_calls_for_its_write_back() -> None:
    assert plan(row(Status.REOPENED, "done")) == [
        (ActionKind.REOPEN, "came back", f"reopen@{SINCE}", None)
    ]
    assert plan(row(Status.RESOLVED)) == [(ActionKind.CLOSE, "resolved", f"close@{SINCE}", "Done")]
    assert plan(row(Status.DISMISSED)) == [
        (ActionKind.CLOSE, "dismissed", f"close@{SINCE}", "Won't Do")
    ]
    assert plan(row(Status.IMPLEMENTED, "done")) == [
        (ActionKind.CLOSE, "implemented", f"close@{SINCE}", "Done")
    ]
    assert plan(row(Status.TICKETED), row(Status.OPEN)) == []


def test_a_done_ticket_is_not_closed_again_and_a_done_action_not_repeated() -> None:
    assert plan(row(Status.RESOLVED, "done"), row(Status.DISMISSED, "done")) == []
    assert plan(row(Status.IMPLEMENTED, "done", writeback_done=f"close@{SINCE}")) == []
    # A new status change is a new action, even on a ticket written back before.
    assert len(plan(row(Status.RESOLVED, writeback_done="close@1"))) == 1


@pytest.mark.parametrize(
    ("shown", "now", "posted"),
    [
        (Decimal("100.00"), Decimal("120.00"), True),  # +20 %, +20: both thresholds met
        (Decimal("100.00"), Decimal("119.99"), False),  # under 20 %
        (Decimal("20.00"), Decimal("29.00"), False),  # +45 % but under 10 USD
        (Decimal("100.00"), Decimal("70.00"), True),  # decreases count too
    ],
)
def test_savings_are_posted_on_a_material_change_only(
    shown: Decimal, now: Decimal, posted: bool
) -> None:
    candidate = row(Status.TICKETED, posted_savings=shown, monthly_savings=now)
    actions = plan_write_back([candidate], WriteBackSettings())
    assert bool(actions) is posted
    if posted:
        assert actions[0].action_id == f"savings@{now}"
        assert actions[0].previous == shown


def test_savings_on_a_done_ticket_or_without_a_baseline_are_left_alone() -> None:
    moved = {"monthly_savings": Decimal("500.00")}
    assert plan(row(Status.TICKETED, "done", **moved)) == []
    assert plan(row(Status.TICKETED, baseline_savings=None, **moved)) == []
    assert len(plan(row(Status.TICKETED, **moved))) == 1  # from the creation baseline


def test_every_comment_carries_its_marker() -> None:
    for action in plan_write_back(
        [row(s, "done" if s is Status.REOPENED else "new") for s in Status]
    ):
        assert action.comment().to_text().endswith(action.marker)
