"""Map items as a queue that many workers drain together.

When a run's owner reaches a map step in distributed mode it enqueues one ``pending`` row per
unfinished item (one bulk insert), then claims items like any helper. Helpers (idle workers)
claim items of any running run with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL), each item
under a lease of its own and a fencing token of its own, so two workers never hold one item and
a paused worker cannot overwrite the item's new owner. An item whose owner died is claimable
again once its lease (database clock) has passed. The run's owner waits until every item is
finished, then checkpoints the map step as usual.

Only rows with a lease are ever taken over: the progress rows of a map step run in the
ordinary (embedded) mode have none and are never claimed here.
"""

from __future__ import annotations

__all__ = ["Distribution", "ItemClaim", "ItemQueue"]

import contextlib
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reclaim.durable.errors import LeaseLost, RunCancelled
from reclaim.durable.records import Checkpoint, Claim, RunStatus, StepStatus
from reclaim.durable.schema import CLAIMABLE_SQL, UtcDateTime, runs, steps
from reclaim.durable.store import Store

_FINAL = (StepStatus.SUCCEEDED, StepStatus.FAILED)


@dataclass(frozen=True)
class ItemClaim:
    """Ownership of one map item until ``lease_expires_at``, proven by its token."""

    run_id: str
    step: str
    item_key: str
    worker_id: str
    fencing_token: int
    attempts: int
    events: str | None
    started_at: datetime | None


@dataclass(frozen=True)
class Distribution:
    """Run map items through the queue, so idle workers can take part (PostgreSQL).

    With ``always`` false only map steps whose items are already queued (by an earlier owner
    of the run) go through the queue: a helper may hold some of them, and only the queue knows.
    """

    queue: ItemQueue
    worker_id: str
    lease_seconds: float
    poll_seconds: float = 0.2
    always: bool = True


class ItemQueue:
    """Enqueue, claim and complete map items, on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self._d = store.dialect

    def enqueue(self, claim: Claim, step: str, keys: Sequence[str]) -> None:
        """Add a pending row per key that has none (fenced by the run's token)."""
        d = self._d
        with self.engine.begin() as connection:
            # Locks the run row: a concurrent claim of the run waits for us, or we fail.
            owned = connection.execute(
                sa.update(runs)
                .where(
                    runs.c.id == claim.run_id,
                    runs.c.fencing_token == claim.fencing_token,
                    runs.c.status == RunStatus.RUNNING.value,
                )
                .values(updated_at=d.now())
            ).rowcount
            if owned != 1:
                raise LeaseLost(f"run {claim.run_id} is no longer owned by {claim.worker_id}")
            # Progress rows left by an embedded run of this step have no lease: queue them too.
            connection.execute(
                sa.update(steps)
                .where(
                    steps.c.run_id == claim.run_id,
                    steps.c.step == step,
                    steps.c.item_key != "",
                    steps.c.status == StepStatus.RUNNING.value,
                    steps.c.lease_expires_at.is_(None),
                )
                .values(status=StepStatus.PENDING.value)
            )
            rows = [
                {
                    "run_id": claim.run_id,
                    "step": step,
                    "item_key": key,
                    "status": StepStatus.PENDING.value,
                    "attempts": 0,
                    "fencing_token": 0,
                }
                for key in keys
            ]
            if rows:
                connection.execute(d.insert(steps).on_conflict_do_nothing(), rows)

    def claim(
        self,
        worker_id: str,
        lease_seconds: float,
        *,
        limit: int = 1,
        run_id: str | None = None,
        step: str | None = None,
        workflows: Collection[str] | None = None,
    ) -> list[ItemClaim]:
        """Take up to ``limit`` claimable items of running runs (optionally of one run/step)."""
        d = self._d
        claimable = sa.or_(
            steps.c.status == StepStatus.PENDING.value,
            sa.and_(
                steps.c.status == StepStatus.RUNNING.value,
                steps.c.lease_expires_at.is_not(None),
                steps.c.lease_expires_at < d.now(),
            ),
        )
        query = (
            sa.select(
                steps.c.run_id,
                steps.c.step,
                steps.c.item_key,
                steps.c.fencing_token,
                runs.c.max_attempts,
            )
            .join(runs, runs.c.id == steps.c.run_id)
            .where(
                # Literal, so the planner can prove the partial index applies in any plan.
                sa.text(f"durable_steps.{CLAIMABLE_SQL}"),
                steps.c.item_key != "",
                claimable,
                runs.c.status == RunStatus.RUNNING.value,
            )
            .order_by(steps.c.run_id, steps.c.step, steps.c.item_key)
            .limit(limit)
            .with_for_update(skip_locked=True, of=steps)
        )
        if run_id is not None:
            query = query.where(steps.c.run_id == run_id)
        if step is not None:
            query = query.where(steps.c.step == step)
        if workflows is not None:
            query = query.where(runs.c.workflow.in_(list(workflows)))
        with self.engine.begin() as connection:
            picked = connection.execute(query).all()
            # The token counts an item's claims: one whose workers all died (it crashes them,
            # say) fails after the run's max_attempts claims instead of killing workers forever.
            poison = [row for row in picked if row.fencing_token >= row.max_attempts]
            for row in poison:
                connection.execute(
                    sa.update(steps)
                    .where(
                        steps.c.run_id == row.run_id,
                        steps.c.step == row.step,
                        steps.c.item_key == row.item_key,
                    )
                    .values(
                        status=StepStatus.FAILED.value,
                        error=f"item {row.item_key!r} of step {row.step!r} was claimed "
                        f"{row.fencing_token} time(s) and never finished: the workers that "
                        "ran it died",
                        owner=None,
                        lease_expires_at=None,
                        finished_at=d.now(),
                    )
                )
            keys = [
                (row.run_id, row.step, row.item_key)
                for row in picked
                if row.fencing_token < row.max_attempts
            ]
            if not keys:
                return []
            result = connection.execute(
                sa.update(steps)
                .where(sa.tuple_(steps.c.run_id, steps.c.step, steps.c.item_key).in_(keys))
                .values(
                    status=StepStatus.RUNNING.value,
                    owner=worker_id,
                    lease_expires_at=d.later(lease_seconds),
                    fencing_token=steps.c.fencing_token + 1,
                )
                .returning(
                    steps.c.run_id,
                    steps.c.step,
                    steps.c.item_key,
                    steps.c.fencing_token,
                    steps.c.attempts,
                    steps.c.events,
                    steps.c.started_at,
                )
            ).all()
        claims = [
            ItemClaim(
                run_id=row.run_id,
                step=row.step,
                item_key=row.item_key,
                worker_id=worker_id,
                fencing_token=row.fencing_token,
                attempts=row.attempts,
                events=row.events,
                started_at=row.started_at,
            )
            for row in result
        ]
        claims.sort(key=lambda c: (c.run_id, c.step, c.item_key))
        return claims

    def save(self, claim: ItemClaim, checkpoint: Checkpoint) -> None:
        """Record an item's progress or result, fenced by the item's token (one statement).

        Raises ``RunCancelled`` when the run was cancelled, ``LeaseLost`` when the item (or the
        run) is no longer this claim's.
        """
        final = checkpoint.status in _FINAL
        values: dict[str, Any] = {
            "status": checkpoint.status.value,
            "attempts": checkpoint.attempts,
            "output": checkpoint.output,
            "error": checkpoint.error,
            "events": checkpoint.events,
            "started_at": sa.func.coalesce(
                steps.c.started_at, sa.literal(checkpoint.started_at, UtcDateTime())
            ),
            "finished_at": checkpoint.finished_at,
        }
        if final:
            values.update(owner=None, lease_expires_at=None)
        run_is_live = (
            sa.select(runs.c.id)
            .where(runs.c.id == claim.run_id, runs.c.status == RunStatus.RUNNING.value)
            .exists()
        )
        with self.engine.begin() as connection:
            written = connection.execute(
                sa.update(steps)
                .where(
                    steps.c.run_id == claim.run_id,
                    steps.c.step == claim.step,
                    steps.c.item_key == claim.item_key,
                    steps.c.fencing_token == claim.fencing_token,
                    run_is_live,
                )
                .values(**values)
            ).rowcount
        if written != 1:
            run = self.store.get_run(claim.run_id)
            if run is not None and run.status is RunStatus.CANCELLED:
                raise RunCancelled(f"run {claim.run_id} was cancelled")
            raise LeaseLost(
                f"item {claim.item_key!r} of step {claim.step!r} in run {claim.run_id} is no "
                f"longer owned by {claim.worker_id}"
            )

    def heartbeat(self, worker_id: str, lease_seconds: float) -> int:
        """Extend the lease of every item ``worker_id`` holds; returns how many."""
        with self.engine.begin() as connection:
            return connection.execute(
                sa.update(steps)
                .where(
                    steps.c.owner == worker_id,
                    steps.c.status == StepStatus.RUNNING.value,
                    steps.c.lease_expires_at.is_not(None),
                )
                .values(lease_expires_at=self._d.later(lease_seconds))
            ).rowcount

    def progress(self, run_id: str, step: str) -> dict[StepStatus, int]:
        """How many items of a map step are in each status."""
        query = (
            sa.select(steps.c.status, sa.func.count())
            .where(steps.c.run_id == run_id, steps.c.step == step, steps.c.item_key != "")
            .group_by(steps.c.status)
        )
        with self.engine.connect() as connection:
            return {StepStatus(status): int(n) for status, n in connection.execute(query)}

    def failure(self, run_id: str, step: str) -> str | None:
        """The error of one failed item of the step, if any failed."""
        query = (
            sa.select(steps.c.error)
            .where(
                steps.c.run_id == run_id,
                steps.c.step == step,
                steps.c.item_key != "",
                steps.c.status == StepStatus.FAILED.value,
            )
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else str(row[0] or "an item failed")

    def outputs(self, run_id: str, step: str) -> dict[str, str]:
        """Encoded outputs of the step's succeeded items, by key (one query)."""
        query = sa.select(steps.c.item_key, steps.c.output).where(
            steps.c.run_id == run_id,
            steps.c.step == step,
            steps.c.item_key != "",
            steps.c.status == StepStatus.SUCCEEDED.value,
        )
        with self.engine.connect() as connection:
            return {key: output or "null" for key, output in connection.execute(query)}

    @contextlib.contextmanager
    def keep_alive(self, worker_id: str, lease_seconds: float) -> Iterator[None]:
        """Heartbeat every item ``worker_id`` holds, from a thread, while the block runs."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(max(lease_seconds / 3, 0.05)):
                with contextlib.suppress(Exception):  # a missed beat: the lease has slack
                    self.heartbeat(worker_id, lease_seconds)

        thread = threading.Thread(target=beat, name="durable-item-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
