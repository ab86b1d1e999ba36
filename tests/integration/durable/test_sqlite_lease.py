"""SQLite: a step's own long write transaction does not cost its run the lease.

A heartbeat is a write and SQLite has one write lock. The weekly run at 1 M resources x 30 days
died with ``LeaseLost: no heartbeat reached the database in a lease: database is locked``: its
evaluate step held the lock longer than the busy timeout and the lease, and the heartbeat took
the refused writes for a lost contact. Here the busy timeout is cut to 0.1 s and the lease to
0.6 s so that a step holding a transaction for five leases shows the same thing quickly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import reclaim.database
from reclaim.database import create_engine
from reclaim.durable import DurableEngine, RunStatus, StepContext, Store, Workflow
from reclaim.durable.worker import Worker

LEASE = 0.6
HELD = 5 * LEASE

rows = sa.MetaData()
bulk_rows = sa.Table("bulk_rows", rows, sa.Column("n", sa.Integer, primary_key=True))


@pytest.fixture
def sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setattr(reclaim.database, "SQLITE_BUSY_TIMEOUT_MS", 100)
    engine = create_engine(f"sqlite:///{tmp_path / 'lease.db'}")
    rows.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _long_transaction_flow() -> Workflow:
    wf = Workflow("long-transaction", register=False)

    @wf.step()
    def evaluate(ctx: StepContext) -> int:
        assert ctx.database is not None
        with ctx.database.begin() as connection:
            connection.execute(sa.insert(bulk_rows), [{"n": n} for n in range(1000)])
            # Slow work inside the transaction, as a huge insert is: the write lock is held.
            time.sleep(HELD)
        return 1000

    @wf.step(depends_on=["evaluate"])
    def report(ctx: StepContext, evaluate: int) -> int:
        return evaluate

    return wf


def test_an_embedded_run_keeps_its_lease_past_its_own_long_transaction(sqlite: Engine) -> None:
    wf = _long_transaction_flow()
    durable = DurableEngine(Store(sqlite), workflows=[wf], lease_seconds=LEASE)
    durable.store.ensure_schema()
    assert durable.run_workflow(wf, run_id="weekly") == 1000
    assert durable.get_run("weekly").status is RunStatus.SUCCEEDED


def test_a_worker_keeps_its_lease_past_its_own_long_transaction(sqlite: Engine) -> None:
    wf = _long_transaction_flow()
    durable = DurableEngine(Store(sqlite), workflows=[wf], lease_seconds=LEASE)
    durable.store.ensure_schema()
    durable.start(wf, run_id="weekly")
    worker = Worker(durable, poll_interval=0.05, schedules=False, workflows=[wf.name], item_batch=0)
    stats = worker.run(until_idle=True)
    assert (stats.succeeded, stats.lost) == (1, 0)
    assert durable.result("weekly") == 1000


def test_a_run_taken_over_while_the_beat_was_locked_out_is_still_lost(sqlite: Engine) -> None:
    # The read that excuses a locked-out beat must not excuse a real takeover.
    from reclaim.durable.heartbeat import still_held

    store = Store(sqlite)
    store.ensure_schema()
    wf = _long_transaction_flow()
    durable = DurableEngine(store, workflows=[wf], lease_seconds=LEASE)
    durable.start(wf, run_id="weekly")
    first = store.claim_run("first", LEASE, run_id="weekly")
    assert first is not None
    assert still_held(store, first)
    second = store.claim_run("second", LEASE, run_id="weekly", force=True)
    assert second is not None
    assert not still_held(store, first)
    assert still_held(store, second)
