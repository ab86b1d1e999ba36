"""Back to Jira: what reclaim learned about a recommendation, written on its ticket, once.

After a run, a recommendation's status says what its ticket should look like:

- ``reopened`` (its waste came back after the ticket was done, or its won't-do snooze ended):
  reopen the ticket with a comment (never a second ticket), then ``ticket_reopened``;
- ``resolved`` (its resource vanished while the ticket was open): comment and close as done;
- ``implemented`` (the next run verified the done ticket's work): comment with the saving
  realized, and close the ticket if a person reopened it meanwhile;
- ``dismissed`` in reclaim while its ticket is open: comment and close as won't do;
- ``ticketed`` with a monthly saving that moved a lot since the ticket last showed it: comment
  with the new figure and update the issue's ``reclaim`` entity property.

:func:`plan_write_back` decides these as pure values; :func:`write_back` performs them.
Jira has no idempotency key, so each action is made exactly-once the way tickets are created:
the action is recorded as pending on the ticket row (with a lease) before Jira is called, every
comment carries a marker (``reclaim-ref <action>``), and a pending action found later is checked
against Jira (the issue's status category and its comments, which Jira reads without index lag)
before anything is sent again. A finished action is remembered on the row (``writeback_done``,
``posted_savings``), so a repeated write-back sends nothing. Transitions are discovered per
issue, comments and transitions are sent with ``repeatable=False``: a lost answer is checked,
never blindly re-sent.
"""

from __future__ import annotations

__all__ = [
    "ActionKind",
    "WriteBackAction",
    "WriteBackReport",
    "WriteBackRow",
    "WriteBackSettings",
    "load_write_back_rows",
    "plan_write_back",
    "write_back",
]

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.errors import ExecutionError
from reclaim.recommend import Event, LifecycleError, RecommendationStore, Status
from reclaim.store.tables.recommend import observations, recommendations
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.sync.outbound import PROPERTY_KEY
from reclaim.sync.outbound import _notify as notify
from reclaim.tickets import (
    CreateOutcomeUnknown,
    Document,
    Issue,
    JiraClient,
    JiraError,
    JiraUnavailableError,
)

MARKER_PREFIX: Final = "reclaim-ref "
_CENT: Final = Decimal("0.01")


class ActionKind(StrEnum):
    REOPEN = "reopen"
    CLOSE = "close"
    SAVINGS = "savings"


@dataclass(frozen=True)
class WriteBackSettings:
    """How write-back talks to Jira and what counts as a material change of savings.

    A saving is posted again when it moved by at least ``savings_ratio`` of the figure the
    ticket shows *and* by at least ``savings_minimum`` (in the recommendation's currency).
    ``lease``: how long a pending action belongs to the process that recorded it; past that,
    another write-back checks Jira and finishes it (so a write-back resumed sooner than that
    after a crash reports those tickets as ``busy`` and leaves them for its next call).
    """

    done_resolution: str = "Done"
    wont_do_resolution: str = "Won't Do"
    reopen_categories: tuple[str, ...] = ("new", "indeterminate")
    savings_ratio: Decimal = Decimal("0.2")
    savings_minimum: Decimal = Decimal("10")
    lease: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class WriteBackRow:
    """One recommendation with a created ticket, as write-back sees both."""

    recommendation_id: int
    fingerprint: str
    status: Status
    status_changed_at: datetime
    title: str | None
    resource_id: str
    monthly_savings: Decimal
    realized_monthly_savings: Decimal | None
    currency: str | None
    ticket_id: int
    key: str
    ticket_category: str | None
    posted_savings: Decimal | None
    baseline_savings: Decimal | None
    """The saving the ticket was created with (the last observation before it), if known."""
    writeback_done: str | None


@dataclass(frozen=True)
class WriteBackAction:
    kind: ActionKind
    reason: str
    """``came back``, ``resolved``, ``implemented``, ``dismissed`` or ``savings changed``."""
    action_id: str
    row: WriteBackRow
    resolution: str | None = None
    savings: Decimal = Decimal(0)
    previous: Decimal | None = None

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def marker(self) -> str:
        return MARKER_PREFIX + self.action_id

    def comment(self) -> Document:
        row = self.row
        what = row.title or f"the recommendation for {row.resource_id}"
        money = _money(self.savings, row.currency)
        if self.kind is ActionKind.REOPEN:
            text = (
                f"reclaim found this again: {what} still applies to {row.resource_id} "
                f"(about {money} a month). Reopened so the work can be finished."
            )
        elif self.reason == "implemented":
            text = (
                f"reclaim checked the work: {row.resource_id} no longer shows this waste. "
                f"Saving realized: about {money} a month. Thank you!"
            )
        elif self.reason == "dismissed":
            text = f"This recommendation was dismissed in reclaim ({what}); closing as won't do."
        elif self.kind is ActionKind.CLOSE:
            text = (
                f"reclaim no longer finds {what} on {row.resource_id}: it went away by itself, "
                "so there is nothing left to do here. Closing."
            )
        else:
            before = _money(self.previous or Decimal(0), row.currency)
            text = (
                f"reclaim's estimate of the saving changed: about {money} a month "
                f"(the ticket said {before})."
            )
        return Document.of_text(f"{text}\n\n{self.marker}")


@dataclass
class WriteBackReport:
    """What one write-back did. ``failed`` maps a ticket key to why it was left for next time."""

    reopened: int = 0
    closed: int = 0
    commented: int = 0
    savings_updated: int = 0
    recognised: int = 0
    """Actions found already done in Jira (a crash or a lost answer before they were recorded)."""
    events: dict[str, int] = field(default_factory=dict)
    busy: int = 0
    """Actions another write-back holds (its lease has not run out)."""
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def actions(self) -> int:
        return self.reopened + self.closed + self.savings_updated


def _money(amount: Decimal, currency: str | None) -> str:
    return f"{amount.quantize(_CENT):,} {currency or 'USD'}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def plan_write_back(
    rows: Iterable[WriteBackRow], settings: WriteBackSettings | None = None
) -> list[WriteBackAction]:
    """The write-backs ``rows`` call for (a pure decision; see the module docstring)."""
    settings = settings or WriteBackSettings()
    actions: list[WriteBackAction] = []
    for row in rows:
        since = _ms(row.status_changed_at)
        ticket_done = row.ticket_category == "done"
        if row.status is Status.REOPENED:
            # Planned even when already done in Jira: the lifecycle event may still be owed.
            actions.append(
                WriteBackAction(
                    ActionKind.REOPEN,
                    "came back",
                    f"reopen@{since}",
                    row,
                    savings=row.monthly_savings,
                )
            )
            continue
        close_id = f"close@{since}"
        if row.writeback_done == close_id:
            continue
        if row.status is Status.IMPLEMENTED:
            realized = row.realized_monthly_savings
            actions.append(
                WriteBackAction(
                    ActionKind.CLOSE,
                    "implemented",
                    close_id,
                    row,
                    resolution=settings.done_resolution,
                    savings=realized if realized is not None else row.monthly_savings,
                )
            )
        elif row.status is Status.RESOLVED and not ticket_done:
            actions.append(
                WriteBackAction(
                    ActionKind.CLOSE,
                    "resolved",
                    close_id,
                    row,
                    resolution=settings.done_resolution,
                    savings=row.monthly_savings,
                )
            )
        elif row.status is Status.DISMISSED and not ticket_done:
            actions.append(
                WriteBackAction(
                    ActionKind.CLOSE,
                    "dismissed",
                    close_id,
                    row,
                    resolution=settings.wont_do_resolution,
                    savings=row.monthly_savings,
                )
            )
        elif row.status is Status.TICKETED and not ticket_done:
            shown = row.posted_savings if row.posted_savings is not None else row.baseline_savings
            now = row.monthly_savings.quantize(_CENT)
            if shown is None:
                continue
            moved = abs(now - shown)
            if moved >= settings.savings_minimum and moved >= settings.savings_ratio * abs(shown):
                actions.append(
                    WriteBackAction(
                        ActionKind.SAVINGS,
                        "savings changed",
                        f"savings@{now}",
                        row,
                        savings=now,
                        previous=shown.quantize(_CENT),
                    )
                )
    return actions


_CANDIDATES: Final = (
    Status.REOPENED,
    Status.RESOLVED,
    Status.IMPLEMENTED,
    Status.DISMISSED,
    Status.TICKETED,
)


def load_write_back_rows(engine: Engine) -> list[WriteBackRow]:
    """Every recommendation with a created ticket whose status may call for a write-back."""
    rec, link, ticket, obs = (
        recommendations.c,
        recommendation_tickets.c,
        tickets.c,
        observations.c,
    )
    baseline = (
        sa.select(obs.monthly_savings)
        .where(obs.recommendation_id == rec.id, obs.seen_at <= ticket.created_at)
        .order_by(obs.seen_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(
            rec.id,
            rec.fingerprint,
            rec.status,
            rec.status_changed_at,
            rec.title,
            rec.resource_id,
            rec.monthly_savings,
            rec.realized_monthly_savings,
            rec.currency,
            ticket.id.label("ticket_id"),
            ticket.key,
            ticket.status_category,
            ticket.posted_savings,
            baseline.label("baseline"),
            ticket.writeback_done,
        )
        .select_from(
            recommendations.join(recommendation_tickets, link.recommendation_id == rec.id).join(
                tickets, ticket.id == link.ticket_id
            )
        )
        .where(
            ticket.state == "created",
            ticket.key.is_not(None),
            rec.status.in_([s.value for s in _CANDIDATES]),
        )
        .order_by(rec.id)
    )
    with engine.connect() as connection:
        return [
            WriteBackRow(
                recommendation_id=int(r.id),
                fingerprint=str(r.fingerprint),
                status=Status(r.status),
                status_changed_at=r.status_changed_at,
                title=r.title,
                resource_id=str(r.resource_id),
                monthly_savings=Decimal(str(r.monthly_savings)),
                realized_monthly_savings=_decimal(r.realized_monthly_savings),
                currency=r.currency,
                ticket_id=int(r.ticket_id),
                key=str(r.key),
                ticket_category=r.status_category,
                posted_savings=_decimal(r.posted_savings),
                baseline_savings=_decimal(r.baseline),
                writeback_done=r.writeback_done,
            )
            for r in connection.execute(query)
        ]


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(_CENT)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def write_back(
    engine: Engine,
    client: JiraClient,
    *,
    settings: WriteBackSettings | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> WriteBackReport:
    """Write every pending lifecycle change and material savings change back to Jira.

    Safe to call again at any time, after any crash: a finished action is never repeated and a
    half-finished one is checked in Jira first. Call it after the inbound sync (so the ticket
    statuses it decides on are fresh) and before the next distribution. Raises
    ``JiraUnavailableError`` when Jira stops answering (what was done so far is recorded);
    other per-ticket failures are reported in ``WriteBackReport.failed``.
    """
    settings = settings or WriteBackSettings()
    writer = _Writer(engine, client, settings, now)
    for action in plan_write_back(load_write_back_rows(engine), settings):
        writer.perform(action)
    return writer.report


class _Writer:
    def __init__(
        self,
        engine: Engine,
        client: JiraClient,
        settings: WriteBackSettings,
        now: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.now = now
        self.report = WriteBackReport()
        self.store = RecommendationStore(engine)

    # -- the protocol ------------------------------------------------------------------

    def perform(self, action: WriteBackAction) -> None:
        claim = self._claim(action)
        if claim is None:
            self.report.busy += 1
            return
        uncertain, already = claim
        notify("writeback-intent", action.row.fingerprint)
        live: Issue | None = None
        try:
            if not already:
                live = self._in_jira(action, uncertain)
                notify("writeback-sent", action.row.fingerprint)
        except JiraUnavailableError:
            self._release(action)
            raise
        except (JiraError, ExecutionError) as exc:
            self._release(action)
            self.report.failed[action.key] = str(exc)
            return
        self._finish(action, live)
        notify("writeback-recorded", action.row.fingerprint)
        if action.kind is ActionKind.REOPEN:
            self._event(action.row.recommendation_id, Event.TICKET_REOPENED)

    def _claim(self, action: WriteBackAction) -> tuple[bool, bool] | None:
        """Record ``action`` as pending; None if another holds the ticket.

        Returns (uncertain, already): ``uncertain`` when this very action was pending already
        (a crash or a failure left it: Jira must be checked), ``already`` when it is recorded
        as done (only its lifecycle event may be owed).
        """
        now = self.now()
        t = tickets.c
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(
                    t.writeback_pending, t.writeback_pending_at, t.writeback_done, t.posted_savings
                ).where(t.id == action.row.ticket_id)
            ).one()
            held = (
                row.writeback_pending is not None
                and row.writeback_pending_at is not None
                and row.writeback_pending_at > now - self.settings.lease
            )
            if held:
                return None
            if action.kind is ActionKind.SAVINGS:
                already = _decimal(row.posted_savings) == action.savings
            else:
                already = row.writeback_done == action.action_id
            taken = connection.execute(
                tickets.update()
                .where(
                    t.id == action.row.ticket_id,
                    t.writeback_pending.is_not_distinct_from(row.writeback_pending),
                    t.writeback_pending_at.is_not_distinct_from(row.writeback_pending_at),
                )
                .values(writeback_pending=action.action_id, writeback_pending_at=now)
            ).rowcount
            if taken != 1:
                return None
        return row.writeback_pending == action.action_id, already

    def _release(self, action: WriteBackAction) -> None:
        """Give the ticket up but keep the action pending: the next attempt checks Jira."""
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.id == action.row.ticket_id)
                .values(writeback_pending_at=None)
            )

    def _finish(self, action: WriteBackAction, live: Issue | None) -> None:
        values: dict[str, object] = {"writeback_pending": None, "writeback_pending_at": None}
        if action.kind is ActionKind.SAVINGS:
            values["posted_savings"] = action.savings
        else:
            values["writeback_done"] = action.action_id
            if action.kind is ActionKind.REOPEN:
                values["posted_savings"] = action.savings
        if live is not None and (live.status_category == "done") == (
            action.kind is ActionKind.CLOSE
        ):
            # Our own write, recorded as applied, so the inbound poll does not read it back as
            # a person's change. A different state means a person moved it meanwhile: left for
            # the poll to apply.
            values.update(
                status=live.status,
                status_category=live.status_category,
                resolution=live.resolution,
                jira_updated_ms=live.updated_ms,
                last_synced_at=self.now(),
            )
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update().where(tickets.c.id == action.row.ticket_id).values(values)
            )

    def _event(self, recommendation_id: int, event: Event) -> None:
        # Already applied means a person's reopen, read by the poll, got there first.
        with contextlib.suppress(LifecycleError):
            self.store.apply_event(recommendation_id, event, now=self.now())
            self.report.events[event.value] = self.report.events.get(event.value, 0) + 1

    # -- Jira ----------------------------------------------------------------------------

    def _in_jira(self, action: WriteBackAction, uncertain: bool) -> Issue | None:
        if action.kind is ActionKind.SAVINGS:
            self._ensure_comment(action, check_first=uncertain)
            self.client.set_property(
                action.key,
                PROPERTY_KEY,
                {
                    "fingerprint": action.row.fingerprint,
                    "monthly_savings": str(action.savings),
                    "currency": action.row.currency or "USD",
                },
            )
            self.report.savings_updated += 1
            return None
        return self._ensure_state(action, check_first=uncertain)

    def _has_marker(self, key: str, marker: str) -> bool:
        return any(marker in comment.body_text for comment in self.client.comments(key))

    def _ensure_comment(self, action: WriteBackAction, *, check_first: bool) -> None:
        for attempt in range(3):
            if (check_first or attempt > 0) and self._has_marker(action.key, action.marker):
                self.report.recognised += 1
                return
            try:
                self.client.add_comment(action.key, action.comment(), repeatable=False)
            except CreateOutcomeUnknown:
                continue
            self.report.commented += 1
            return
        raise ExecutionError(
            f"Jira lost the answer to a comment on {action.key} three times",
            fix="run the write-back again; it checks the comments before posting",
        )

    def _ensure_state(self, action: WriteBackAction, *, check_first: bool) -> Issue:
        """Move the issue to the action's side of done, with the marked comment, once."""
        want_done = action.kind is ActionKind.CLOSE
        for attempt in range(3):
            issue = self.client.get_issue(action.key)
            there = (issue.status_category == "done") == want_done
            commented = (check_first or attempt > 0) and self._has_marker(action.key, action.marker)
            if there and commented:
                self.report.recognised += 1
                return issue
            try:
                if there:
                    self.client.add_comment(action.key, action.comment(), repeatable=False)
                    self.report.commented += 1
                else:
                    transition = self._transition_for(action, want_done)
                    self.client.transition(
                        action.key,
                        transition,
                        resolution=action.resolution if want_done else None,
                        comment=None if commented else action.comment(),
                        repeatable=False,
                    )
                    if want_done:
                        self.report.closed += 1
                    else:
                        self.report.reopened += 1
            except CreateOutcomeUnknown:
                continue
            return self.client.get_issue(action.key)
        raise ExecutionError(
            f"Jira lost the answer to a write-back on {action.key} three times",
            fix="run the write-back again; it checks the issue before sending anything",
        )

    def _transition_for(self, action: WriteBackAction, want_done: bool) -> str:
        # Workflows differ per project and issue type, so transitions are discovered per issue.
        available = self.client.transitions(action.key)
        wanted: Sequence[str] = ("done",) if want_done else self.settings.reopen_categories
        for category in wanted:
            for candidate in available:
                if candidate.to_category == category:
                    return candidate.id
        names = ", ".join(f"{t.name} → {t.to_status}" for t in available) or "none"
        raise ExecutionError(
            f"issue {action.key} has no transition to a {' or '.join(wanted)} status "
            f"(available: {names})",
            fix="add one to the project's workflow, or close or reopen the ticket by hand",
        )
