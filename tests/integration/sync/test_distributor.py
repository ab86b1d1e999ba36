"""The Distributor's reconcile and duplicate sweep against the simulator's lagging index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from reclaim.store import upgrade
from reclaim.sync import Distributor, TicketLedger, TicketPlan, fingerprint_label
from reclaim.tickets import IssueDraft, JiraClient, JiraCredentials, connect
from reclaim.tickets.simulator import JiraState, RunningSimulator, SimulatorApp, run_in_thread


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
