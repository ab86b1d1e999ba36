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

__all__ = ["Distribution", "ItemClaim", "ItemQueue", "QueuedStep", "Settled"]

import contextlib
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reclaim.database import Backend
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
    # The item's position in the list its step maps over, when its owner queued one.
    element_index: int | None = None


@dataclass(frozen=True)
class QueuedStep:
    """A map step of a running run with items waiting in the queue."""

    run_id: str
    step: str
    workflow: str


@dataclass(frozen=True)
class Settled:
    """What one ``ItemQueue.settle`` did: the items it claimed, the saves that were refused."""

    claimed: list[ItemClaim]
    lost: list[ItemClaim]


# _no_pipeline: on PostgreSQL the queue never runs an executemany inside its transactions.
# psycopg runs one in pipeline mode, which leaves the server session without its
# idle-in-transaction timer until the next statement: a process frozen right after one (before
# its COMMIT) kept its locks indefinitely in tests/chaos/test_frozen_owner.py, where a single
# statement is cut off after a lease (reclaim.durable.sessions).
_ENQUEUE_UNNEST = sa.text(
    "INSERT INTO durable_steps "
    "(run_id, step, item_key, status, attempts, fencing_token, element_index) "
    "SELECT :run_id, :step, v.key, 'pending', 0, 0, v.element_index "
    "FROM unnest(CAST(:keys AS TEXT[]), CAST(:element_indexes AS INTEGER[])) "
    "AS v(key, element_index) "
    "ON CONFLICT DO NOTHING"
)

# The fenced save of a batch of items on PostgreSQL: the same update as ``_save_statement``,
# once per element of the parallel arrays.
_SAVE_ARRAYS = {
    "key_run": "TEXT",
    "key_step": "TEXT",
    "key_item": "TEXT",
    "token": "BIGINT",
    "status": "TEXT",
    "attempts": "INTEGER",
    "output": "TEXT",
    "error": "TEXT",
    "events": "TEXT",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "release": "BOOLEAN",
}
_SAVE_UNNEST = sa.text(
    "UPDATE durable_steps AS s SET status = v.status, attempts = v.attempts, "
    "output = v.output, error = v.error, events = v.events, "
    "started_at = COALESCE(s.started_at, v.started_at), finished_at = v.finished_at, "
    "owner = CASE WHEN v.release THEN NULL ELSE s.owner END, "
    "lease_expires_at = CASE WHEN v.release THEN NULL ELSE s.lease_expires_at END "
    "FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _SAVE_ARRAYS.items())
    + ") AS v("
    + ", ".join(_SAVE_ARRAYS)
    + ") WHERE s.run_id = v.key_run AND s.step = v.key_step AND s.item_key = v.key_item "
    "AND s.fencing_token = v.token AND EXISTS (SELECT 1 FROM durable_runs AS r "
    "WHERE r.id = s.run_id AND r.status = 'running') "
    "RETURNING s.run_id, s.step, s.item_key"
)


def _save_statement() -> Any:
    """The fenced update of one item's row (executed once per item, or for a batch)."""
    release = sa.bindparam("release", type_=sa.Boolean)
    run_is_live = (
        sa.select(runs.c.id)
        .where(runs.c.id == steps.c.run_id, runs.c.status == RunStatus.RUNNING.value)
        .exists()
    )
    return (
        sa.update(steps)
        .where(
            steps.c.run_id == sa.bindparam("key_run", type_=sa.String),
            steps.c.step == sa.bindparam("key_step", type_=sa.String),
            steps.c.item_key == sa.bindparam("key_item", type_=sa.String),
            steps.c.fencing_token == sa.bindparam("token", type_=sa.BigInteger),
            run_is_live,
        )
        .values(
            status=sa.bindparam("status", type_=sa.String),
            attempts=sa.bindparam("attempts", type_=sa.Integer),
            output=sa.bindparam("output", type_=sa.Text),
            error=sa.bindparam("error", type_=sa.Text),
            events=sa.bindparam("events", type_=sa.Text),
            started_at=sa.func.coalesce(
                steps.c.started_at, sa.bindparam("started_at", type_=UtcDateTime())
            ),
            finished_at=sa.bindparam("finished_at", type_=UtcDateTime()),
            # A final state hands the item back: no owner, no lease.
            owner=sa.case((release, sa.null()), else_=steps.c.owner),
            lease_expires_at=sa.case((release, sa.null()), else_=steps.c.lease_expires_at),
        )
        .execution_options(preserve_rowcount=True)
    )


@dataclass(frozen=True)
class Distribution:
    """Run map items through the queue, so idle workers can take part (PostgreSQL).

    With ``always`` false only map steps whose items are already queued (by an earlier owner
    of the run) go through the queue: a helper may hold some of them, and only the queue knows.
    """

    queue: ItemQueue
    worker_id: str
    lease_seconds: float
    # How often the owner looks whether helpers finished the last items (one cheap query).
    poll_seconds: float = 0.05
    always: bool = True
    # Items this process runs at once (None: the map step's declared concurrency), and at
    # most how many one claim takes (None: as many as there are free slots).
    concurrency: int | None = None
    batch: int | None = None


class ItemQueue:
    """Enqueue, claim and complete map items, on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self._d = store.dialect
        self._save_statement = _save_statement()
        self._claim_statements: dict[tuple[bool, bool, bool, bool], Any] = {}
        self._next_step_statements: dict[tuple[bool, bool], Any] = {}

    def enqueue(
        self,
        claim: Claim,
        step: str,
        keys: Sequence[str],
        element_indexes: Sequence[int] | None = None,
    ) -> None:
        """Add a pending row per key that has none (fenced by the run's token).

        ``element_indexes``: each key's position in the list the step maps over, handed to
        whoever claims the item (``ItemClaim.element_index``) so it can decode that element
        alone."""
        d = self._d
        indexes: list[int | None] = (
            list(element_indexes) if element_indexes is not None else [None] * len(keys)
        )
        if len(indexes) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(indexes)} element indexes")
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
                    "element_index": index,
                }
                for key, index in zip(keys, indexes, strict=True)
            ]
            if not rows:
                return
            if self.store.backend is Backend.POSTGRESQL:
                # One statement, not an executemany: see _no_pipeline.
                connection.execute(
                    _ENQUEUE_UNNEST,
                    {
                        "run_id": claim.run_id,
                        "step": step,
                        "keys": list(keys),
                        "element_indexes": indexes,
                    },
                )
            else:
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
        skip_runs: Collection[str] = (),
    ) -> list[ItemClaim]:
        """Take up to ``limit`` claimable items of running runs (optionally of one run/step)."""
        return self.settle(
            worker_id,
            lease_seconds,
            (),
            limit=limit,
            run_id=run_id,
            step=step,
            workflows=workflows,
            skip_runs=skip_runs,
        ).claimed

    def settle(
        self,
        worker_id: str,
        lease_seconds: float,
        finished: Sequence[tuple[ItemClaim, Checkpoint]],
        *,
        limit: int = 0,
        run_id: str | None = None,
        step: str | None = None,
        workflows: Collection[str] | None = None,
        release: Sequence[ItemClaim] = (),
        skip_runs: Collection[str] = (),
    ) -> Settled:
        """Save finished items, hand back ``release``d ones and claim up to ``limit`` more, in
        one transaction.

        Each save is fenced by its item's token, like ``save``; the items whose save matched
        no row (taken over by another worker, or their run is no longer running) are listed in
        ``Settled.lost``. One commit for a whole batch is what lets a worker keep many short
        items in flight: a transaction per item would cost more than the item. A released item
        (claimed, never started) is pending again at once for any worker. Items of
        ``skip_runs`` (runs this process refused) are never claimed.
        """
        with self.engine.begin() as connection:
            lost = self._save_many(connection, finished)
            # One statement per item, not an executemany (see _no_pipeline): rare, on stop.
            for item in release:
                connection.execute(
                    sa.update(steps)
                    .where(
                        steps.c.run_id == sa.bindparam("key_run", type_=sa.String),
                        steps.c.step == sa.bindparam("key_step", type_=sa.String),
                        steps.c.item_key == sa.bindparam("key_item", type_=sa.String),
                        steps.c.fencing_token == sa.bindparam("token", type_=sa.BigInteger),
                        steps.c.status == StepStatus.RUNNING.value,
                    )
                    .values(status=StepStatus.PENDING.value, owner=None, lease_expires_at=None),
                    {
                        "key_run": item.run_id,
                        "key_step": item.step,
                        "key_item": item.item_key,
                        "token": item.fencing_token,
                    },
                )
            claimed = (
                self._claim(
                    connection, worker_id, lease_seconds, limit, run_id, step, workflows, skip_runs
                )
                if limit > 0
                else []
            )
        return Settled(claimed=claimed, lost=lost)

    def _save_many(
        self, connection: sa.Connection, finished: Sequence[tuple[ItemClaim, Checkpoint]]
    ) -> list[ItemClaim]:
        if not finished:
            return []
        params = [self._save_params(claim, checkpoint) for claim, checkpoint in finished]
        if self.store.backend is Backend.POSTGRESQL:
            if len(params) > 1:
                return self._save_values(connection, finished, params)
            # A list of one would still be an executemany: see _no_pipeline.
            written = connection.execute(self._save_statement, params[0]).rowcount
        else:
            written = connection.execute(self._save_statement, params).rowcount
        if written == len(finished):
            return []
        # Rare (a lease ran out, the run was cancelled): find which saves matched no row.
        keys = [(c.run_id, c.step, c.item_key) for c, _ in finished]
        held = {
            (row.run_id, row.step, row.item_key, row.fencing_token)
            for row in connection.execute(
                sa.select(steps.c.run_id, steps.c.step, steps.c.item_key, steps.c.fencing_token)
                .join(runs, runs.c.id == steps.c.run_id)
                .where(
                    sa.tuple_(steps.c.run_id, steps.c.step, steps.c.item_key).in_(keys),
                    runs.c.status == RunStatus.RUNNING.value,
                )
            )
        }
        return [
            claim
            for claim, _ in finished
            if (claim.run_id, claim.step, claim.item_key, claim.fencing_token) not in held
        ]

    def _save_values(
        self,
        connection: sa.Connection,
        finished: Sequence[tuple[ItemClaim, Checkpoint]],
        params: list[dict[str, Any]],
    ) -> list[ItemClaim]:
        # PostgreSQL: the whole batch in one statement over arrays, one round trip whatever
        # its size (an executemany costs a round trip per item, and a VALUES list a compile
        # per batch).
        arrays = {name: [row[name] for row in params] for name in _SAVE_ARRAYS}
        saved = connection.execute(_SAVE_UNNEST, arrays).all()
        done = {(row.run_id, row.step, row.item_key) for row in saved}
        return [c for c, _ in finished if (c.run_id, c.step, c.item_key) not in done]

    def _claim_statement(
        self, by_run: bool, by_step: bool, by_workflow: bool, skipping: bool
    ) -> Any:
        """The claim as one ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``,
        built once per shape of scope."""
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
            sa.select(steps.c.run_id, steps.c.step, steps.c.item_key, runs.c.max_attempts)
            .join(runs, runs.c.id == steps.c.run_id)
            .where(
                # Literal, so the planner can prove the partial index applies in any plan.
                sa.text(f"durable_steps.{CLAIMABLE_SQL}"),
                steps.c.item_key != "",
                claimable,
                runs.c.status == RunStatus.RUNNING.value,
            )
            .order_by(steps.c.run_id, steps.c.step, steps.c.item_key)
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .with_for_update(skip_locked=True, of=steps)
        )
        if by_run:
            query = query.where(steps.c.run_id == sa.bindparam("in_run", type_=sa.String))
        if by_step:
            query = query.where(steps.c.step == sa.bindparam("in_step", type_=sa.String))
        if by_workflow:
            query = query.where(
                runs.c.workflow.in_(sa.bindparam("workflows", expanding=True, type_=sa.String))
            )
        if skipping:
            query = query.where(
                steps.c.run_id.not_in(sa.bindparam("skip", expanding=True, type_=sa.String))
            )
        picked = query.subquery("picked")
        # The token counts an item's claims: one whose workers all died (it crashes them,
        # say) fails after the run's max_attempts claims instead of killing workers forever.
        poison = steps.c.fencing_token >= picked.c.max_attempts
        died = (
            sa.literal("item '")
            + steps.c.item_key
            + sa.literal("' of step '")
            + steps.c.step
            + sa.literal("' was claimed ")
            + sa.cast(steps.c.fencing_token, sa.String)
            + sa.literal(" time(s) and never finished: the workers that ran it died")
        )
        # One statement: pick (SKIP LOCKED) and take, one round trip before the commit.
        return (
            sa.update(steps)
            .where(
                steps.c.run_id == picked.c.run_id,
                steps.c.step == picked.c.step,
                steps.c.item_key == picked.c.item_key,
            )
            .values(
                status=sa.case((poison, StepStatus.FAILED.value), else_=StepStatus.RUNNING.value),
                owner=sa.case(
                    (poison, sa.null()), else_=sa.bindparam("new_owner", type_=sa.String)
                ),
                lease_expires_at=sa.case(
                    (poison, sa.null()),
                    else_=d.later(sa.cast(sa.bindparam("lease", type_=sa.Float), sa.Float)),
                ),
                fencing_token=sa.case(
                    (poison, steps.c.fencing_token), else_=steps.c.fencing_token + 1
                ),
                error=sa.case((poison, died), else_=steps.c.error),
                finished_at=sa.case((poison, d.now()), else_=steps.c.finished_at),
            )
            .returning(
                steps.c.run_id,
                steps.c.step,
                steps.c.item_key,
                steps.c.status,
                steps.c.fencing_token,
                steps.c.attempts,
                steps.c.events,
                steps.c.started_at,
                steps.c.element_index,
            )
        )

    def _claim(
        self,
        connection: sa.Connection,
        worker_id: str,
        lease_seconds: float,
        limit: int,
        run_id: str | None,
        step: str | None,
        workflows: Collection[str] | None,
        skip_runs: Collection[str] = (),
    ) -> list[ItemClaim]:
        shape = (run_id is not None, step is not None, workflows is not None, bool(skip_runs))
        statement = self._claim_statements.get(shape)
        if statement is None:
            statement = self._claim_statements[shape] = self._claim_statement(*shape)
        params: dict[str, Any] = {"new_owner": worker_id, "lease": lease_seconds, "limit": limit}
        if run_id is not None:
            params["in_run"] = run_id
        if step is not None:
            params["in_step"] = step
        if workflows is not None:
            params["workflows"] = list(workflows)
        if skip_runs:
            params["skip"] = list(skip_runs)
        rows = connection.execute(statement, params).all()
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
                element_index=row.element_index,
            )
            for row in rows
            if row.status == StepStatus.RUNNING.value
        ]
        claims.sort(key=lambda c: (c.run_id, c.step, c.item_key))
        return claims

    def next_step(
        self,
        worker_id: str,
        *,
        workflows: Collection[str],
        skip_runs: Collection[str] = (),
        skip_steps: Collection[tuple[str, str]] = (),
    ) -> QueuedStep | None:
        """A map step with an item claimable by ``worker_id``: of the oldest running run that
        has one, its first such step (in name order).

        A read, no claim: a helper picks the step first, so that it can run that step's items
        with the step's own concurrency. Runs ``worker_id`` owns are left out (their owner
        runs their items already), and so are ``skip_runs`` and ``skip_steps``
        (``(run_id, step)`` pairs).
        """
        if not workflows:
            return None
        shape = (bool(skip_runs), bool(skip_steps))
        statement = self._next_step_statements.get(shape)
        if statement is None:
            statement = self._next_step_statements[shape] = self._next_step_statement(*shape)
        params: dict[str, Any] = {"me": worker_id, "workflows": list(workflows)}
        if skip_runs:
            params["skip_runs"] = list(skip_runs)
        if skip_steps:
            params["skip_steps"] = list(skip_steps)
        with self.engine.connect() as connection:
            row = connection.execute(statement, params).first()
        return None if row is None else QueuedStep(row.id, row.step, row.workflow)

    def _next_step_statement(self, skipping_runs: bool, skipping_steps: bool) -> Any:
        """The look of ``next_step``, built once per shape of its exclusions."""
        claimable = sa.or_(
            steps.c.status == StepStatus.PENDING.value,
            sa.and_(
                steps.c.status == StepStatus.RUNNING.value,
                steps.c.lease_expires_at.is_not(None),
                steps.c.lease_expires_at < self._d.now(),
            ),
        )
        # Per running run (few), its first claimable item through the partial index: a walk
        # over the queue in key order would pass every item of a run this worker owns.
        first_step = (
            sa.select(steps.c.step)
            .where(
                steps.c.run_id == runs.c.id,
                sa.text(f"durable_steps.{CLAIMABLE_SQL}"),
                steps.c.item_key != "",
                claimable,
            )
            .order_by(steps.c.step, steps.c.item_key)
            .limit(1)
        )
        if skipping_steps:
            first_step = first_step.where(
                sa.tuple_(steps.c.run_id, steps.c.step).not_in(
                    sa.bindparam("skip_steps", expanding=True)
                )
            )
        me = sa.bindparam("me", type_=sa.String)
        candidates = sa.select(
            runs.c.id,
            runs.c.workflow,
            runs.c.created_at,
            first_step.scalar_subquery().label("step"),
        ).where(
            runs.c.status == RunStatus.RUNNING.value,
            runs.c.workflow.in_(sa.bindparam("workflows", expanding=True, type_=sa.String)),
            sa.or_(runs.c.owner.is_(None), runs.c.owner != me),
        )
        if skipping_runs:
            candidates = candidates.where(
                runs.c.id.not_in(sa.bindparam("skip_runs", expanding=True, type_=sa.String))
            )
        found = candidates.subquery("candidates")
        return (
            sa.select(found.c.id, found.c.step, found.c.workflow)
            .where(found.c.step.is_not(None))
            .order_by(found.c.created_at, found.c.id)
            .limit(1)
        )

    def save(self, claim: ItemClaim, checkpoint: Checkpoint) -> None:
        """Record an item's progress or result, fenced by the item's token (one statement).

        Raises ``RunCancelled`` when the run was cancelled, ``LeaseLost`` when the item (or the
        run) is no longer this claim's.
        """
        with self.engine.begin() as connection:
            written = connection.execute(
                self._save_statement, self._save_params(claim, checkpoint)
            ).rowcount
        if written != 1:
            self.raise_lost(claim)

    def raise_lost(self, claim: ItemClaim) -> None:
        """Raise why a fenced write of ``claim`` matched no row."""
        run = self.store.get_run(claim.run_id)
        if run is not None and run.status is RunStatus.CANCELLED:
            raise RunCancelled(f"run {claim.run_id} was cancelled")
        raise LeaseLost(
            f"item {claim.item_key!r} of step {claim.step!r} in run {claim.run_id} is no "
            f"longer owned by {claim.worker_id}"
        )

    @staticmethod
    def _save_params(claim: ItemClaim, checkpoint: Checkpoint) -> dict[str, Any]:
        final = checkpoint.status in _FINAL
        return {
            "key_run": claim.run_id,
            "key_step": claim.step,
            "key_item": claim.item_key,
            "token": claim.fencing_token,
            "status": checkpoint.status.value,
            "attempts": checkpoint.attempts,
            "output": checkpoint.output,
            "error": checkpoint.error,
            "events": checkpoint.events,
            "started_at": checkpoint.started_at,
            "finished_at": checkpoint.finished_at,
            "release": final,
        }

    def release_owner(self, run_id: str, owner: str) -> int:
        """Make the unfinished items ``owner`` holds in ``run_id`` pending again (that owner is
        known to be gone); returns how many. Their tokens move on at their next claim."""
        with self.engine.begin() as connection:
            return connection.execute(
                sa.update(steps)
                .where(
                    steps.c.run_id == run_id,
                    steps.c.owner == owner,
                    steps.c.item_key != "",
                    steps.c.status == StepStatus.RUNNING.value,
                )
                .values(status=StepStatus.PENDING.value, owner=None, lease_expires_at=None)
            ).rowcount

    def refuse(self, claim: ItemClaim, reason: str) -> bool:
        """Hand an item this process cannot run (its code does not match the run) back at
        once, pending for any other worker, with ``reason`` recorded on it; fenced by its token.
        """
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    sa.update(steps)
                    .where(
                        steps.c.run_id == claim.run_id,
                        steps.c.step == claim.step,
                        steps.c.item_key == claim.item_key,
                        steps.c.fencing_token == claim.fencing_token,
                        steps.c.status == StepStatus.RUNNING.value,
                    )
                    .values(
                        status=StepStatus.PENDING.value,
                        owner=None,
                        lease_expires_at=None,
                        error=f"refused by {claim.worker_id}: {reason}",
                    )
                ).rowcount
                == 1
            )

    def heartbeat(self, worker_id: str, lease_seconds: float) -> int:
        """Extend the lease of every item ``worker_id`` holds that no other transaction has
        locked right now; returns how many.

        The rows locked elsewhere are this worker's own items being saved by a settle (or a
        claim taking over an item whose lease ran out): waiting for them would lock the rows
        in another order than the settle does, and PostgreSQL would break the deadlock by
        failing one of the two after a second. Those items are finished (or lost) once that
        transaction commits; the others are extended here, the skipped ones at the next beat.
        """
        held = (
            sa.select(steps.c.run_id, steps.c.step, steps.c.item_key)
            .where(
                steps.c.owner == worker_id,
                steps.c.status == StepStatus.RUNNING.value,
                steps.c.lease_expires_at.is_not(None),
            )
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as connection:
            return connection.execute(
                sa.update(steps)
                .where(sa.tuple_(steps.c.run_id, steps.c.step, steps.c.item_key).in_(held))
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
