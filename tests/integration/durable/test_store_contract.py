"""The store's contract, held on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from reclaim.durable import (
    Checkpoint,
    Claim,
    LeaseLost,
    RunBusy,
    RunCancelled,
    RunStatus,
    StepStatus,
    Store,
)
from reclaim.durable.schema import runs, steps


def _create(store: Store, run_id: str = "run-1", **extra: object) -> None:
    fields: dict[str, object] = {
        "run_id": run_id,
        "workflow": "wf",
        "version": "1",
        "fingerprint": "f" * 64,
        "definition": "[]",
        "input_json": '{"week": 48}',
    }
    fields.update(extra)
    store.create_run(**fields)  # type: ignore[arg-type]


def _done(step: str, item_key: str = "", output: str = "1") -> Checkpoint:
    return Checkpoint(step, item_key, StepStatus.SUCCEEDED, 1, output=output)


def _claim(store: Store, worker: str = "w1", lease: float = 60.0, **kwargs: object) -> Claim:
    claim = store.claim_run(worker, lease, **kwargs)  # type: ignore[arg-type]
    assert claim is not None
    return claim


def test_create_is_idempotent_on_run_id_and_dedupe_key(store: Store) -> None:
    first, created = store.create_run(
        run_id="a",
        workflow="wf",
        version="1",
        fingerprint="f",
        definition="[]",
        input_json="null",
        dedupe_key="schedule:weekly@2026-11-23T00:00",
    )
    assert created
    assert first.status is RunStatus.PENDING
    again, created_again = store.create_run(
        run_id="b",
        workflow="wf",
        version="1",
        fingerprint="f",
        definition="[]",
        input_json="null",
        dedupe_key="schedule:weekly@2026-11-23T00:00",
    )
    assert not created_again
    assert again.id == "a"
    assert [run.id for run in store.list_runs()] == ["a"]


def test_claim_takes_the_oldest_pending_run_once(store: Store) -> None:
    _create(store, "old")
    _create(store, "new")
    first = _claim(store, "w1")
    second = _claim(store, "w2")
    assert (first.run_id, second.run_id) == ("old", "new")
    assert store.claim_run("w3", 60) is None
    assert first.run.status is RunStatus.RUNNING
    assert first.fencing_token == 1
    assert first.run.attempts == 1
    assert first.lease_expires_at > first.db_now


def test_claim_filters_by_workflow(store: Store) -> None:
    _create(store, "x", workflow="other")
    assert store.claim_run("w", 60, workflows=["wf"]) is None
    assert _claim(store, "w", workflows=["other"]).run_id == "x"


def test_an_expired_lease_is_claimed_again_with_a_new_token(store: Store) -> None:
    _create(store)
    stale = _claim(store, "w1", lease=-1.0)  # a lease already in the past: its owner "died"
    fresh = _claim(store, "w2")
    assert fresh.fencing_token == stale.fencing_token + 1
    assert fresh.run.attempts == 2
    assert fresh.run.owner == "w2"


def test_a_stale_owner_cannot_write_after_a_takeover(store: Store) -> None:
    _create(store)
    stale = _claim(store, "w1", lease=-1.0)
    store.checkpoint(stale, _done("collect"))
    fresh = _claim(store, "w2")
    with pytest.raises(LeaseLost, match="w1"):
        store.checkpoint(stale, _done("evaluate"))
    assert not store.heartbeat(stale.run_id, stale.fencing_token, 60)
    assert store.heartbeat(fresh.run_id, fresh.fencing_token, 60)
    store.checkpoint(fresh, _done("evaluate"))
    assert [s.step for s in store.load_steps("run-1")] == ["collect", "evaluate"]


def test_a_live_lease_is_not_claimed_unless_forced(store: Store) -> None:
    _create(store)
    owner = _claim(store, "w1")
    assert store.claim_run("w2", 60, run_id="run-1") is None
    forced = _claim(store, "w2", run_id="run-1", force=True)
    assert forced.fencing_token == owner.fencing_token + 1
    with pytest.raises(LeaseLost):
        store.checkpoint(owner, _done("a"))


def test_the_last_checkpoint_and_the_final_status_commit_together(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    store.checkpoint(
        claim, _done("report", output='"ok"'), finish=RunStatus.SUCCEEDED, output='"ok"'
    )
    run = store.get_run("run-1")
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.output == '"ok"'
    assert run.owner is None
    assert run.finished_at is not None


def test_a_fenced_finish_rolls_back_its_step_too(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    # The run is finished by someone else between the step write and the final update: only
    # possible through the final UPDATE's own condition, so simulate with a finished run.
    with store.engine.begin() as connection:
        connection.execute(sa.update(runs).values(status="failed"))
    with pytest.raises(LeaseLost):
        store.checkpoint(claim, _done("report"), finish=RunStatus.SUCCEEDED, output="1")
    assert store.load_steps("run-1") == []


def test_checkpoint_upserts_and_keeps_the_first_start(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    _create(store)
    claim = _claim(store)
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    store.checkpoint(claim, Checkpoint("a", "", StepStatus.RUNNING, 1, error="boom", started_at=t0))
    later = t0 + timedelta(seconds=5)
    store.checkpoint(
        claim,
        Checkpoint(
            "a", "", StepStatus.SUCCEEDED, 2, output="3", started_at=later, finished_at=later
        ),
    )
    (record,) = store.load_steps("run-1")
    assert record.status is StepStatus.SUCCEEDED
    assert record.attempts == 2
    assert record.error is None
    assert record.started_at == t0
    assert record.duration == 5.0


def test_map_items_are_rows_of_their_own(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    for key in ("i-1", "i-2", "i-3"):
        store.checkpoint(claim, _done("distribute", key, output=f'"{key}"'))
    keys = {(s.step, s.item_key) for s in store.load_steps("run-1")}
    assert keys == {("distribute", "i-1"), ("distribute", "i-2"), ("distribute", "i-3")}


def test_cancel_stops_the_owner_at_its_next_checkpoint(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    assert store.cancel("run-1")
    with pytest.raises(RunCancelled):
        store.checkpoint(claim, _done("a"))
    assert not store.heartbeat("run-1", claim.fencing_token, 60)
    assert not store.cancel("run-1")  # already finished
    assert store.claim_run("w2", 60) is None


def test_a_run_that_keeps_crashing_goes_dead(store: Store) -> None:
    _create(store, max_attempts=2)
    _claim(store, "w1", lease=-1.0)
    _claim(store, "w2", lease=-1.0)
    assert store.claim_run("w3", 60) is None
    run = store.get_run("run-1")
    assert run is not None
    assert run.status is RunStatus.DEAD
    assert run.error is not None
    assert "2 time(s)" in run.error


def test_reopen_keeps_finished_steps_and_drops_failed_ones(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    store.checkpoint(claim, _done("a"))
    store.checkpoint(claim, Checkpoint("b", "", StepStatus.FAILED, 3, error="boom"))
    store.finish_run(claim, RunStatus.FAILED, error="boom")
    reopened = store.reopen("run-1")
    assert reopened.status is RunStatus.PENDING
    assert reopened.attempts == 0
    assert [s.step for s in store.load_steps("run-1")] == ["a"]
    claim = _claim(store, "w2", run_id="run-1", force=True)
    store.finish_run(claim, RunStatus.SUCCEEDED, output="1")
    with pytest.raises(RunBusy, match="already succeeded"):
        store.reopen("run-1")


def test_release_makes_the_run_pending_for_another_worker(store: Store) -> None:
    _create(store)
    claim = _claim(store, "w1")
    assert store.release(claim)
    again = _claim(store, "w2")
    assert again.run_id == "run-1"
    with pytest.raises(LeaseLost):
        store.checkpoint(claim, _done("a"))


def test_concurrent_claims_hand_each_run_to_one_worker(store: Store) -> None:
    for n in range(12):
        _create(store, f"run-{n:02d}")
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (claim := store.claim_run(name, 60)) is not None:
            with lock:
                claimed.append(claim.run_id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [f"run-{n:02d}" for n in range(12)]


def test_the_database_clock_is_used(store: Store) -> None:
    _create(store)
    claim = _claim(store, lease=30)
    assert 29 <= (claim.lease_expires_at - claim.db_now).total_seconds() <= 31
    assert abs((store.now() - claim.db_now).total_seconds()) < 60


def test_deleting_a_run_removes_its_steps(store: Store) -> None:
    _create(store)
    claim = _claim(store)
    store.checkpoint(claim, _done("a"))
    assert store.delete_run("run-1")
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(steps)).scalar() == 0


def test_a_run_can_be_created_already_claimed(store: Store) -> None:
    fields: dict[str, object] = {
        "run_id": "fast",
        "workflow": "wf",
        "version": "1",
        "fingerprint": "f",
        "definition": "[]",
        "input_json": "null",
        "timeout_seconds": 60.0,
    }
    claim = store.create_claimed_run("w1", 30, **fields)  # type: ignore[arg-type]
    assert claim is not None
    assert claim.fencing_token == 1
    assert claim.run.status is RunStatus.RUNNING
    assert claim.run.attempts == 1
    assert claim.run.timeout_at is not None
    assert 25 <= (claim.lease_expires_at - claim.db_now).total_seconds() <= 35
    assert store.create_claimed_run("w2", 30, **fields) is None  # type: ignore[arg-type]
    assert store.claim_run("w2", 30) is None  # held by w1
    store.checkpoint(claim, _done("a"), finish=RunStatus.SUCCEEDED, output="1")
    pending, created = store.create_run(**fields)  # type: ignore[arg-type]
    assert not created
    assert pending.status is RunStatus.SUCCEEDED
    assert pending.timeout_at is not None


def test_a_finished_checkpoint_is_never_overwritten(store: Store) -> None:
    from reclaim.durable import DurableError

    _create(store)
    claim = _claim(store)
    store.checkpoint(claim, _done("a", output='"first"'))
    with pytest.raises(DurableError, match="already succeeded"):
        store.checkpoint(claim, Checkpoint("a", "", StepStatus.RUNNING, 2, events="[]"))
    (record,) = store.load_steps("run-1")
    assert record.status is StepStatus.SUCCEEDED
    assert record.output == '"first"'
