from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclaim.recommend.lifecycle import (
    Effect,
    Event,
    LifecycleError,
    RecommendationState,
    Status,
    transition,
)

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SNOOZE = timedelta(days=90)


def step(state: RecommendationState, event: Event, now: datetime = NOW) -> RecommendationState:
    return transition(state, event, now=now, snooze=SNOOZE).after


def test_happy_path_open_ticketed_done_implemented() -> None:
    state = RecommendationState(Status.OPEN)
    state = step(state, Event.SEEN)
    assert state.status is Status.OPEN
    state = step(state, Event.TICKET_CREATED)
    assert state.status is Status.TICKETED
    assert state.has_ticket
    state = step(state, Event.TICKET_DONE)
    assert state.status is Status.TICKETED
    assert state.ticket_done
    decision = transition(state, Event.GONE, now=NOW)
    assert decision.after.status is Status.IMPLEMENTED
    assert decision.effect is Effect.RECORD_SAVINGS


def test_done_ticket_whose_waste_remains_is_reopened_not_duplicated() -> None:
    state = RecommendationState(Status.TICKETED, has_ticket=True, ticket_done=True)
    decision = transition(state, Event.SEEN, now=NOW)
    assert decision.after.status is Status.REOPENED
    assert decision.effect is Effect.COMMENT_AND_REOPEN_TICKET
    assert not decision.after.ticket_done
    assert step(decision.after, Event.TICKET_REOPENED).status is Status.TICKETED


def test_disappearing_while_ticket_open_resolves_and_closes_ticket() -> None:
    decision = transition(
        RecommendationState(Status.TICKETED, has_ticket=True), Event.GONE, now=NOW
    )
    assert decision.after.status is Status.RESOLVED
    assert decision.effect is Effect.COMMENT_AND_CLOSE_TICKET


def test_open_gone_resolves_without_ticket_effect() -> None:
    decision = transition(RecommendationState(Status.OPEN), Event.GONE, now=NOW)
    assert decision.after.status is Status.RESOLVED
    assert decision.effect is None


def test_wont_do_snoozes_and_runs_change_nothing_until_it_ends() -> None:
    state = RecommendationState(Status.TICKETED, has_ticket=True)
    state = step(state, Event.TICKET_WONT_DO)
    assert state.status is Status.DISMISSED
    assert state.snoozed_until == NOW + SNOOZE
    for event in (Event.SEEN, Event.GONE):
        assert step(state, event, NOW + timedelta(days=89)) == state
    later = NOW + SNOOZE
    reopened = transition(state, Event.SEEN, now=later)
    assert reopened.after.status is Status.REOPENED
    assert reopened.effect is Effect.COMMENT_AND_REOPEN_TICKET
    assert reopened.after.snoozed_until is None
    assert step(state, Event.GONE, later).status is Status.RESOLVED


def test_came_back_after_implemented_is_reopened() -> None:
    state = RecommendationState(Status.IMPLEMENTED, has_ticket=True)
    assert step(state, Event.SEEN).status is Status.REOPENED
    without_ticket = transition(RecommendationState(Status.RESOLVED), Event.SEEN, now=NOW)
    assert without_ticket.after.status is Status.REOPENED
    assert without_ticket.effect is Effect.CREATE_TICKET


def test_a_person_reopening_a_done_or_wont_do_ticket_makes_it_work_to_do() -> None:
    done = RecommendationState(Status.TICKETED, has_ticket=True, ticket_done=True)
    after = step(done, Event.TICKET_REOPENED)
    assert (after.status, after.ticket_done) == (Status.TICKETED, False)
    # So the next run that no longer sees the waste resolves it instead of crediting the team.
    assert transition(after, Event.GONE, now=NOW).after.status is Status.RESOLVED
    dismissed = step(RecommendationState(Status.TICKETED, has_ticket=True), Event.TICKET_WONT_DO)
    after = step(dismissed, Event.TICKET_REOPENED)
    assert (after.status, after.snoozed_until) == (Status.TICKETED, None)
    for status in (Status.IMPLEMENTED, Status.RESOLVED):
        with pytest.raises(LifecycleError):
            step(RecommendationState(status, has_ticket=True), Event.TICKET_REOPENED)


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (RecommendationState(Status.OPEN), Event.TICKET_DONE),
        (RecommendationState(Status.OPEN), Event.TICKET_REOPENED),
        (RecommendationState(Status.IMPLEMENTED, has_ticket=True), Event.TICKET_CREATED),
        (RecommendationState(Status.TICKETED, has_ticket=True), Event.TICKET_CREATED),
        (RecommendationState(Status.RESOLVED), Event.DISMISS),
        (RecommendationState(Status.IMPLEMENTED, has_ticket=True), Event.TICKET_WONT_DO),
        (RecommendationState(Status.OPEN, has_ticket=True), Event.TICKET_REOPENED),
    ],
)
def test_invalid_transitions_raise(state: RecommendationState, event: Event) -> None:
    with pytest.raises(LifecycleError, match="cannot take event"):
        transition(state, event, now=NOW, snooze=SNOOZE)


def test_dismiss_needs_a_snooze() -> None:
    with pytest.raises(LifecycleError, match="snooze"):
        transition(RecommendationState(Status.OPEN), Event.DISMISS, now=NOW)


@st.composite
def states(draw: st.DrawFn) -> RecommendationState:
    """Coherent stored states: only a dismissed recommendation has a snooze."""
    status = draw(st.sampled_from(Status))
    has_ticket = status is Status.TICKETED or draw(st.booleans())
    snoozed_until = None
    if status is Status.DISMISSED:
        snoozed_until = draw(
            st.none() | st.just(NOW + timedelta(days=1)) | st.just(NOW - timedelta(days=1))
        )
    ticket_done = (
        has_ticket and status in (Status.TICKETED, Status.REOPENED) and draw(st.booleans())
    )
    return RecommendationState(status, has_ticket, ticket_done, snoozed_until)


@given(states(), st.lists(st.sampled_from(Event), max_size=25))
def test_any_event_sequence_stays_in_the_machine(
    state: RecommendationState, events: list[Event]
) -> None:
    for event in events:
        try:
            decision = transition(state, event, now=NOW, snooze=SNOOZE)
        except LifecycleError:
            continue
        after = decision.after
        assert after.status in Status
        if after.status is not Status.DISMISSED:
            assert after.snoozed_until is None or after == state
        if after.status is Status.REOPENED and decision.changed:
            assert not after.ticket_done
        if decision.effect in (Effect.COMMENT_AND_CLOSE_TICKET, Effect.COMMENT_AND_REOPEN_TICKET):
            assert state.has_ticket
        state = after


@given(states(), st.booleans())
def test_runs_never_raise(state: RecommendationState, seen: bool) -> None:
    transition(state, Event.SEEN if seen else Event.GONE, now=NOW)
