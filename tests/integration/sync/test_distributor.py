"""The Distributor's reconcile and duplicate sweep against the simulator's lagging index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from reclaim.store import upgrade
from reclaim.sync import Distributor, TicketLedger, TicketPlan, fingerprint_label
from reclaim.tickets import (
    CreateOutcomeUnknown,
    IssueDraft,
    JiraClient,
    JiraCredentials,
    JiraRequestError,
    connect,
)
from reclaim.tickets.simulator import JiraState, RunningSimulator, SimulatorApp, run_in_thread
from reclaim.tickets.simulator.faults import FaultPlan


class Clock:
    """One clock for the simulator's index and the distributor's waits."""

    def __init__(self) -> None:
        self.now = 1_796_000_000.0

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[RunningSimulator]:
    with run_in_thread(SimulatorApp(JiraState(index_lag=20, clock=clock))) as running:
        yield running


@pytest.fixture
def jira(sim: RunningSimulator) -> Iterator[JiraClient]:
    with connect(JiraCredentials.cloud(sim.url, "b@x", "t"), requests_per_second=None) as client:
        yield client


@pytest.fixture
def ledger(engine: Engine) -> TicketLedger:
    upgrade(engine)
    return TicketLedger(engine)


def plan(fp: str = "f00d") -> TicketPlan:
    return TicketPlan(fp, None, IssueDraft("OPS", f"ticket {fp}"))


def crashed_after_create(jira: JiraClient, ledger: TicketLedger, clock: Clock) -> str:
    """The state a process leaves when it dies after Jira accepted the create."""
    ledger.record_intents([("f00d", "OPS")], clock.utc())
    return jira.create_issue(plan().keyed_draft()).key


def test_reconcile_waits_out_the_grace_period_before_searching(
    jira: JiraClient, ledger: TicketLedger, clock: Clock
) -> None:
    key = crashed_after_create(jira, ledger, clock)
    distributor = Distributor(jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep)
    started = clock.now
    assert distributor.distribute(plan()) == key
    assert clock.now - started >= 30
    assert len(list(jira.search_all(f"labels = {fingerprint_label('f00d')}"))) == 1
    row = ledger.get("f00d")
    assert row is not None
    assert (row.state, row.key) == ("created", key)


def test_a_grace_shorter_than_the_lag_duplicates_and_the_sweep_repairs_it(
    jira: JiraClient, ledger: TicketLedger, clock: Clock
) -> None:
    first = crashed_after_create(jira, ledger, clock)
    hasty = Distributor(jira, ledger, grace=1, now=clock.utc, sleep=clock.sleep)
    second = hasty.distribute(plan())
    assert second != first  # the search could not see the first issue yet
    clock.now += 60
    closed = hasty.sweep_duplicates(["f00d"])
    assert closed == [second]
    duplicate = jira.get_issue(second)
    assert (duplicate.status_category, duplicate.resolution) == ("done", "Duplicate")
    row = ledger.get("f00d")
    assert row is not None
    assert row.key == first


def test_a_created_ticket_is_never_created_again(
    jira: JiraClient, ledger: TicketLedger, clock: Clock
) -> None:
    distributor = Distributor(jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep)
    key = distributor.distribute(plan())
    clock.now += timedelta(days=1).total_seconds()
    assert distributor.distribute(plan()) == key
    assert distributor.distribute_many([plan()]) == ({"f00d": key}, {})
    clock.now += 60
    assert len(list(jira.search_all(f"labels = {fingerprint_label('f00d')}"))) == 1


def test_a_refused_create_leaves_no_intent(
    jira: JiraClient, ledger: TicketLedger, clock: Clock
) -> None:
    distributor = Distributor(jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep)
    bad = TicketPlan("bad", None, IssueDraft("NOPE", "x"))
    keys, refused = distributor.distribute_many([bad, plan()])
    assert list(keys) == ["f00d"]
    assert "NOPE" in refused["bad"]
    assert ledger.get("bad") is None


def test_a_lost_bulk_answer_is_reconciled_whatever_the_chunk_waited_to_be_sent(
    sim: RunningSimulator,
    jira: JiraClient,
    ledger: TicketLedger,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks sent long after the run began: the grace period counts from each send.

    Each chunk takes 25 s to reach Jira (a slow site); the third chunk's answer is lost. Had
    every intent been stamped at the start, the next run's grace period would have ended
    before the index (20 s behind) showed the third chunk, and it would be created again.
    """
    plans = [plan(f"{n:04x}") for n in range(150)]
    sent = 0
    create_issues = jira.create_issues

    def slow_create_issues(drafts: list[IssueDraft]) -> object:
        nonlocal sent
        clock.now += 25
        sent += 1
        if sent == 3:
            sim.app.faults.configure(FaultPlan(lose_creates=1))
        return create_issues(drafts)

    monkeypatch.setattr(jira, "create_issues", slow_create_issues)
    first = Distributor(jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep)
    with pytest.raises(CreateOutcomeUnknown):
        first.distribute_many(plans)
    monkeypatch.setattr(jira, "create_issues", create_issues)
    keys, refused = Distributor(
        jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep
    ).distribute_many(plans)
    assert refused == {}
    assert len(keys) == 150
    clock.now += 60
    labelled = [
        label
        for issue in jira.search_all('labels = "reclaim" ORDER BY created ASC')
        for label in issue.labels
        if label.startswith("reclaim-fp-")
    ]
    assert len(labelled) == len(set(labelled)) == 150


def test_a_bulk_request_jira_refuses_whole_leaves_no_intent(
    jira: JiraClient, ledger: TicketLedger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 or 403 on the bulk call: nothing was created, so no intent waits for a grace."""

    def refuse(drafts: list[IssueDraft]) -> object:
        raise JiraRequestError("POST", "/rest/api/3/issue/bulk", 401, ("not logged in",))

    monkeypatch.setattr(jira, "create_issues", refuse)
    plans = [plan(f"{n:04x}") for n in range(60)]
    with pytest.raises(JiraRequestError):
        Distributor(jira, ledger, grace=30, now=clock.utc, sleep=clock.sleep).distribute_many(plans)
    assert [ledger.get(p.fingerprint) for p in plans] == [None] * 60
