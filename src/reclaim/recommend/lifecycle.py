"""The lifecycle of a recommendation, as a pure state machine.

::

    open ──ticket_created──► ticketed ──(gone, ticket done)──► implemented
     │                          │  └──ticket_wont_do──► dismissed (snoozed until …)
     │                          └──(gone, ticket not done)──► resolved
     └──(gone)──► resolved
    implemented | resolved ──(seen again)──► reopened ──ticket_created/ticket_reopened──► ticketed
    ticketed (done) | dismissed ──ticket_reopened (a person reopened it in Jira)──► ticketed
    dismissed ──(snooze over, seen)──► reopened;  (snooze over, gone)──► resolved

Two kinds of events drive it. A **run** says, for each stored recommendation in its scope,
whether the rule matched the resource again (``seen``) or not (``gone``). The **ticket system**
says a ticket was created, reopened, finished (``ticket_done``: the team says it did the work)
or closed as won't do (``ticket_wont_do``). A done ticket is not the end: the next run checks
the work, and the recommendation becomes ``implemented`` only if the rule no longer matches;
if it still matches, it is ``reopened`` (the ticket is commented on and reopened, never
duplicated). While a dismissed recommendation is snoozed, runs change nothing but its figures.

``transition`` is the single source of truth; the columnar reconcile planner derives its Polars
expressions from ``RUN_TRANSITIONS`` so both agree by construction (and a property test checks
it row by row).
"""

from __future__ import annotations

__all__ = [
    "RUN_TRANSITIONS",
    "Effect",
    "Event",
    "LifecycleError",
    "RecommendationState",
    "Status",
    "Transition",
    "run_transition",
    "transition",
]

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from reclaim.errors import ExecutionError


class Status(StrEnum):
    OPEN = "open"
    TICKETED = "ticketed"
    IMPLEMENTED = "implemented"
    DISMISSED = "dismissed"
    REOPENED = "reopened"
    RESOLVED = "resolved"


class Event(StrEnum):
    SEEN = "seen"
    """A run matched the rule on the resource again."""
    GONE = "gone"
    """A run covering the rule and the account did not match it any more."""
    TICKET_CREATED = "ticket_created"
    TICKET_REOPENED = "ticket_reopened"
    TICKET_DONE = "ticket_done"
    """The owning team closed the ticket as done; the next run verifies it."""
    TICKET_WONT_DO = "ticket_wont_do"
    """The owning team closed the ticket as won't do: dismiss and snooze."""
    DISMISS = "dismiss"
    """A person dismissed the recommendation (with or without a ticket): snooze."""


class Effect(StrEnum):
    """What the ticket side must do because of a transition (the sync step performs it)."""

    CREATE_TICKET = "create_ticket"
    COMMENT_AND_CLOSE_TICKET = "comment_and_close_ticket"
    COMMENT_AND_REOPEN_TICKET = "comment_and_reopen_ticket"
    RECORD_SAVINGS = "record_savings"


class LifecycleError(ExecutionError):
    """This event cannot happen to a recommendation in this status."""


@dataclass(frozen=True)
class RecommendationState:
    """The parts of a stored recommendation that its lifecycle depends on."""

    status: Status
    has_ticket: bool = False
    ticket_done: bool = False
    snoozed_until: datetime | None = None

    def snoozed(self, now: datetime) -> bool:
        return (
            self.status is Status.DISMISSED
            and self.snoozed_until is not None
            and now < self.snoozed_until
        )


@dataclass(frozen=True)
class Transition:
    """The decision for one event: the state after it, and the effect on the ticket side."""

    before: RecommendationState
    event: Event
    after: RecommendationState
    effect: Effect | None = None

    @property
    def changed(self) -> bool:
        return self.before.status is not self.after.status


# Run events, keyed by (status, event, ticket_done, snooze over). Snoozed dismissed
# recommendations never reach this table: a snooze freezes the status.
_S = Status
_RUN: dict[tuple[Status, Event, bool], tuple[Status, Effect | None]] = {}
for _done in (False, True):
    _RUN[(_S.OPEN, Event.SEEN, _done)] = (_S.OPEN, None)
    _RUN[(_S.OPEN, Event.GONE, _done)] = (_S.RESOLVED, None)
    _RUN[(_S.REOPENED, Event.SEEN, _done)] = (_S.REOPENED, None)
    _RUN[(_S.IMPLEMENTED, Event.SEEN, _done)] = (_S.REOPENED, Effect.COMMENT_AND_REOPEN_TICKET)
    _RUN[(_S.IMPLEMENTED, Event.GONE, _done)] = (_S.IMPLEMENTED, None)
    _RUN[(_S.RESOLVED, Event.SEEN, _done)] = (_S.REOPENED, Effect.COMMENT_AND_REOPEN_TICKET)
    _RUN[(_S.RESOLVED, Event.GONE, _done)] = (_S.RESOLVED, None)
    _RUN[(_S.DISMISSED, Event.SEEN, _done)] = (_S.REOPENED, Effect.COMMENT_AND_REOPEN_TICKET)
    _RUN[(_S.DISMISSED, Event.GONE, _done)] = (_S.RESOLVED, None)
# A ticket the team called done but whose waste is still there was not done: reopen it.
_RUN[(_S.TICKETED, Event.SEEN, False)] = (_S.TICKETED, None)
_RUN[(_S.TICKETED, Event.SEEN, True)] = (_S.REOPENED, Effect.COMMENT_AND_REOPEN_TICKET)
_RUN[(_S.TICKETED, Event.GONE, False)] = (_S.RESOLVED, Effect.COMMENT_AND_CLOSE_TICKET)
_RUN[(_S.TICKETED, Event.GONE, True)] = (_S.IMPLEMENTED, Effect.RECORD_SAVINGS)
_RUN[(_S.REOPENED, Event.GONE, False)] = (_S.RESOLVED, Effect.COMMENT_AND_CLOSE_TICKET)
_RUN[(_S.REOPENED, Event.GONE, True)] = (_S.IMPLEMENTED, Effect.RECORD_SAVINGS)

RUN_TRANSITIONS: Final[Mapping[tuple[Status, Event, bool], tuple[Status, Effect | None]]] = _RUN
"""(status, seen|gone, ticket done) → (status after, effect), for recommendations not snoozed."""

_TICKET_EVENTS: Final = frozenset(
    {Event.TICKET_CREATED, Event.TICKET_REOPENED, Event.TICKET_DONE, Event.TICKET_WONT_DO}
)


def run_transition(
    state: RecommendationState, seen: bool, now: datetime
) -> tuple[RecommendationState, Effect | None]:
    """The state after a run that did (``seen``) or did not match the recommendation again."""
    result = transition(state, Event.SEEN if seen else Event.GONE, now=now)
    return result.after, result.effect


def transition(
    state: RecommendationState,
    event: Event,
    *,
    now: datetime,
    snooze: timedelta | None = None,
) -> Transition:
    """Decide what ``event`` does to a recommendation in ``state`` at ``now``.

    ``snooze`` is how long a dismissal lasts (``DISMISS`` and ``TICKET_WONT_DO`` need it).
    Raises ``LifecycleError`` for an event that cannot happen in this status, e.g. a ticket
    finished on a recommendation that never had one.
    """
    if event in (Event.SEEN, Event.GONE):
        if state.snoozed(now):
            return Transition(state, event, state)
        after_status, effect = RUN_TRANSITIONS[(state.status, event, state.ticket_done)]
        after = replace(state, status=after_status)
        if after_status is Status.REOPENED:
            # The reopened ticket is a new piece of work; whether it is done is not yet known.
            after = replace(after, ticket_done=False, snoozed_until=None)
        if after_status is not Status.DISMISSED:
            after = replace(after, snoozed_until=None)
        if effect in (Effect.COMMENT_AND_REOPEN_TICKET, Effect.COMMENT_AND_CLOSE_TICKET) and (
            not state.has_ticket
        ):
            # Without a ticket, there is nothing to comment on; reopened ones get a new ticket.
            effect = Effect.CREATE_TICKET if after_status is Status.REOPENED else None
        return Transition(state, event, after, effect)
    if event in _TICKET_EVENTS:
        return _ticket_transition(state, event, now=now, snooze=snooze)
    if event is Event.DISMISS:
        if state.status in (Status.IMPLEMENTED, Status.RESOLVED):
            raise _invalid(state, event)
        until = now + _require_snooze(snooze, event)
        after = replace(state, status=Status.DISMISSED, snoozed_until=until)
        effect = Effect.COMMENT_AND_CLOSE_TICKET if state.has_ticket else None
        return Transition(state, event, after, effect)
    raise _invalid(state, event)  # pragma: no cover - every Event is handled above


def _ticket_transition(
    state: RecommendationState, event: Event, *, now: datetime, snooze: timedelta | None
) -> Transition:
    status = state.status
    if event is Event.TICKET_CREATED:
        if status not in (Status.OPEN, Status.REOPENED) or (
            state.has_ticket and status is Status.OPEN
        ):
            raise _invalid(state, event)
        after = replace(state, status=Status.TICKETED, has_ticket=True, ticket_done=False)
        return Transition(state, event, after)
    if not state.has_ticket:
        raise _invalid(state, event, "it has no ticket")
    if event is Event.TICKET_REOPENED:
        # From reopened: reclaim reopened the ticket itself. From ticketed or dismissed: a
        # person reopened a done or won't-do ticket in Jira, so the work is to do again (and a
        # dismissal is withdrawn). Implemented and resolved stand: the waste is gone.
        if status not in (Status.REOPENED, Status.TICKETED, Status.DISMISSED):
            raise _invalid(state, event)
        after = replace(state, status=Status.TICKETED, ticket_done=False, snoozed_until=None)
        return Transition(state, event, after)
    if event is Event.TICKET_DONE:
        if status not in (Status.TICKETED, Status.REOPENED):
            raise _invalid(state, event)
        # Stays ticketed: only the next run can tell whether the waste is really gone.
        return Transition(state, event, replace(state, ticket_done=True))
    # TICKET_WONT_DO
    if status not in (Status.TICKETED, Status.REOPENED):
        raise _invalid(state, event)
    until = now + _require_snooze(snooze, event)
    after = replace(state, status=Status.DISMISSED, snoozed_until=until, ticket_done=False)
    return Transition(state, event, after)


def _require_snooze(snooze: timedelta | None, event: Event) -> timedelta:
    if snooze is None or snooze <= timedelta(0):
        raise LifecycleError(
            f"event {event.value!r} needs a positive snooze duration",
            fix="pass snooze=timedelta(days=…) (the recommend settings default to 90 days)",
        )
    return snooze


def _invalid(state: RecommendationState, event: Event, why: str | None = None) -> LifecycleError:
    reason = f" ({why})" if why else ""
    return LifecycleError(
        f"a recommendation in status {state.status.value!r} cannot take event "
        f"{event.value!r}{reason}",
        fix="check the recommendation's current status with `reclaim recommendations show`",
    )
