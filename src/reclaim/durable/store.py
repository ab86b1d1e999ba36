"""The checkpoint store: one SQLAlchemy Core implementation, with small dialect hooks.

Everything the engine persists goes through ``Store``. The hot path is ``checkpoint``: exactly
one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` and one commit per finished step, where the
SELECT from ``durable_runs`` is the fencing check (no row is written unless the caller's token
is still the run's token). The last step's checkpoint and the run's final status share one
transaction. Resuming reads all of a run's checkpoints with one query (``load_steps``).

Ownership: ``claim_run`` hands a run to one worker under a lease measured on the DATABASE clock
(``clock_timestamp()`` on PostgreSQL, ``strftime('now')`` on SQLite), so skew between machines
cannot shorten or stretch it. On PostgreSQL candidates are taken with ``FOR UPDATE SKIP LOCKED``
so many workers never wait on each other; on SQLite every transaction starts with
``BEGIN IMMEDIATE`` (see ``reclaim.database``), which serialises claims. Each claim increments
the run's ``fencing_token``; checkpoints lock the run row ``FOR SHARE`` while they check it, so a
claim and a stale owner's write cannot interleave.
"""

from __future__ import annotations

__all__ = ["Store"]

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from reclaim.database import backend_of
from reclaim.durable import statements
from reclaim.durable.dialect import PreparedWrite, dialect_for
from reclaim.durable.errors import DurableError, LeaseLost, RunBusy, RunCancelled, RunNotFound
from reclaim.durable.records import (
    DEFAULT_MAX_ATTEMPTS,
    Checkpoint,
    Claim,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from reclaim.durable.schema import ensure_schema, runs, steps
from reclaim.durable.statements import STEP_COLUMNS, run_record, step_record

_LIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class _Fenced(Exception):
    """Internal: a fenced write matched no row; the transaction must roll back."""


class Store:
    """Runs and checkpoints in one SQLite or PostgreSQL database.

    Thread-safe: every method opens its own short transaction from the engine's pool.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = backend_of(engine)
        self.dialect = dialect_for(self.backend)
        # Built once: constructing a statement per call costs more than running it.
        self._checkpoint_statement = statements.checkpoint(self.dialect)
        self._insert_claimed = statements.insert_run(self.dialect, claimed=True)
        self._insert_pending = statements.insert_run(self.dialect, claimed=False)
        self._finish_statement = statements.finish_run(self.dialect)
        self._checkpoint_write = PreparedWrite(engine, self._checkpoint_statement, self.dialect)

    def ensure_schema(self) -> None:
        """Create the tables when missing (for use outside reclaim's migrations)."""
        ensure_schema(self.engine)

    def now(self) -> datetime:
        """The database clock, which all leases are measured on."""
        with self.engine.connect() as connection:
            value: datetime = connection.execute(sa.select(self.dialect.now())).scalar_one()
            return value

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        *,
        run_id: str,
        workflow: str,
        version: str,
        fingerprint: str,
        definition: str,
        input_json: str,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        dedupe_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a pending run; return it and whether it is new.

        Starting is idempotent: when ``run_id`` or ``dedupe_key`` already exists the existing
        run is returned with ``False`` (one schedule tick, one run, however many schedulers).
        """
        fields = {
            "id": run_id,
            "workflow": workflow,
            "version": version,
            "fingerprint": fingerprint,
            "definition": definition,
            "input": input_json,
            "max_attempts": max_attempts,
            "dedupe_key": dedupe_key,
            "timeout_seconds": timeout_seconds,
        }
        with self.engine.begin() as connection:
            row = self._insert_run(connection, fields, owner=None, lease_seconds=0.0)
            if row is not None:
                return run_record(row), True
            where = runs.c.id == run_id
            if dedupe_key is not None:
                where = sa.or_(where, runs.c.dedupe_key == dedupe_key)
            existing = connection.execute(sa.select(runs).where(where).limit(1)).one()
        return run_record(existing), False

    def create_claimed_run(
        self,
        worker_id: str,
        lease_seconds: float,
        *,
        run_id: str,
        workflow: str,
        version: str,
        fingerprint: str,
        definition: str,
        input_json: str,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        dedupe_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Claim | None:
        """Insert a run already claimed by ``worker_id`` (start and run in one commit).

        None when ``run_id`` or ``dedupe_key`` exists already: claim that run the usual way.
        """
        fields = {
            "id": run_id,
            "workflow": workflow,
            "version": version,
            "fingerprint": fingerprint,
            "definition": definition,
            "input": input_json,
            "max_attempts": max_attempts,
            "dedupe_key": dedupe_key,
            "timeout_seconds": timeout_seconds,
        }
        with self.engine.begin() as connection:
            row = self._insert_run(connection, fields, owner=worker_id, lease_seconds=lease_seconds)
        if row is None:
            return None
        run = run_record(row)
        assert run.lease_expires_at is not None
        assert run.started_at is not None
        return Claim(
            run=run,
            worker_id=worker_id,
            fencing_token=run.fencing_token,
            lease_expires_at=run.lease_expires_at,
            db_now=run.started_at,
        )

    def _insert_run(
        self,
        connection: Connection,
        fields: dict[str, Any],
        *,
        owner: str | None,
        lease_seconds: float,
    ) -> Row[Any] | None:
        claimed = owner is not None
        params = {
            **fields,
            "status": (RunStatus.RUNNING if claimed else RunStatus.PENDING).value,
            "attempts": int(claimed),
            "fencing_token": int(claimed),
            "owner": owner,
            "lease": lease_seconds,
        }
        statement = self._insert_claimed if claimed else self._insert_pending
        return connection.execute(statement, params).first()

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        return None if row is None else run_record(row)

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        version: str | None = None,
        statuses: Collection[RunStatus] | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        query = sa.select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if workflow is not None:
            query = query.where(runs.c.workflow == workflow)
        if version is not None:
            query = query.where(runs.c.version == version)
        if statuses:
            query = query.where(runs.c.status.in_([s.value for s in statuses]))
        with self.engine.connect() as connection:
            return [run_record(row) for row in connection.execute(query)]

    def load_steps(self, run_id: str) -> list[StepRecord]:
        """Every checkpoint of a run, in one query."""
        query = (
            sa.select(*STEP_COLUMNS, statements.QUEUED)
            .where(steps.c.run_id == run_id)
            .order_by(steps.c.started_at, steps.c.step, steps.c.item_key)
        )
        with self.engine.connect() as connection:
            return [step_record(row) for row in connection.execute(query)]

    def load_step(self, run_id: str, step: str) -> StepRecord | None:
        """The checkpoint of one plain step of a run (not of a map item); None if it has none."""
        query = sa.select(*STEP_COLUMNS, statements.QUEUED).where(
            steps.c.run_id == run_id, steps.c.step == step, steps.c.item_key == ""
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return step_record(row) if row is not None else None

    # ------------------------------------------------------------- ownership

    def claim_run(
        self,
        worker_id: str,
        lease_seconds: float,
        *,
        run_id: str | None = None,
        workflows: Collection[str] | Mapping[str, str] | None = None,
        force: bool = False,
    ) -> Claim | None:
        """Take the oldest runnable run (or ``run_id``) for ``worker_id``; None if there is none.

        Runnable: pending, or running with an expired lease (its owner died). ``force`` takes a
        live run (``run_id`` only) even while another owner's lease runs: that owner's next
        write fails on the fencing token. The claim increments ``attempts``; a run already
        claimed ``max_attempts`` times is marked dead instead and skipped. ``workflows``: only
        runs of these workflows; given as a mapping of name to version, only runs started
        under that version (a worker never takes a run its code would refuse, so during a
        rolling deploy each version's runs wait for a worker of that version).
        """
        if force and run_id is None:
            raise ValueError("force=True needs a run_id")
        d = self.dialect
        runnable: sa.ColumnElement[bool]
        if force:
            runnable = runs.c.status.in_(_LIVE)
        else:
            runnable = sa.or_(
                runs.c.status == RunStatus.PENDING.value,
                sa.and_(
                    runs.c.status == RunStatus.RUNNING.value,
                    sa.or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < d.now()),
                ),
            )
        query = sa.select(runs).where(runnable).order_by(runs.c.created_at, runs.c.id).limit(1)
        if run_id is not None:
            query = query.where(runs.c.id == run_id)
        if isinstance(workflows, Mapping):
            query = query.where(
                sa.or_(
                    sa.false(),
                    *(
                        sa.and_(runs.c.workflow == name, runs.c.version == version)
                        for name, version in workflows.items()
                    ),
                )
            )
        elif workflows is not None:
            query = query.where(runs.c.workflow.in_(list(workflows)))
        query = query.with_for_update(skip_locked=True)
        with self.engine.begin() as connection:
            while True:
                row = connection.execute(query).first()
                if row is None:
                    return None
                candidate = run_record(row)
                if candidate.attempts >= candidate.max_attempts:
                    self._mark_dead(connection, candidate)
                    if run_id is not None:
                        return None
                    continue
                claimed = connection.execute(
                    sa.update(runs)
                    .where(runs.c.id == candidate.id)
                    .values(
                        status=RunStatus.RUNNING.value,
                        owner=worker_id,
                        attempts=runs.c.attempts + 1,
                        fencing_token=runs.c.fencing_token + 1,
                        lease_expires_at=d.later(lease_seconds),
                        started_at=sa.func.coalesce(runs.c.started_at, d.now()),
                        updated_at=d.now(),
                    )
                    .returning(*runs.c, d.now().label("db_now"))
                ).one()
                run = run_record(claimed)
                assert run.lease_expires_at is not None
                return Claim(
                    run=run,
                    worker_id=worker_id,
                    fencing_token=run.fencing_token,
                    lease_expires_at=run.lease_expires_at,
                    db_now=claimed._mapping["db_now"],
                )

    def _mark_dead(self, connection: Connection, run: RunRecord) -> None:
        connection.execute(
            sa.update(runs)
            .where(runs.c.id == run.id)
            .values(
                status=RunStatus.DEAD.value,
                error=(
                    f"claimed {run.attempts} time(s) without finishing (limit {run.max_attempts}): "
                    "the process running it keeps dying; inspect `reclaim runs show "
                    f"{run.id}`, fix the cause, then `reclaim runs resume {run.id}`"
                ),
                owner=None,
                lease_expires_at=None,
                fencing_token=runs.c.fencing_token + 1,
                finished_at=self.dialect.now(),
                updated_at=self.dialect.now(),
            )
        )

    def heartbeat(self, run_id: str, fencing_token: int, lease_seconds: float) -> bool:
        """Extend the lease; False when the run was claimed by another owner or cancelled."""
        d = self.dialect
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runs)
                .where(
                    runs.c.id == run_id,
                    runs.c.fencing_token == fencing_token,
                    runs.c.status == RunStatus.RUNNING.value,
                )
                .values(lease_expires_at=d.later(lease_seconds), updated_at=d.now())
            )
        return result.rowcount == 1

    def release(self, claim: Claim) -> bool:
        """Give an unfinished run back (a worker shutting down): pending again, no owner.

        The claim still counted as an attempt, so a run that is released over and over also
        ends up dead; call it only for a real shutdown.
        """
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runs)
                .where(
                    runs.c.id == claim.run_id,
                    runs.c.fencing_token == claim.fencing_token,
                    runs.c.status == RunStatus.RUNNING.value,
                )
                .values(
                    status=RunStatus.PENDING.value,
                    owner=None,
                    lease_expires_at=None,
                    fencing_token=runs.c.fencing_token + 1,
                    updated_at=self.dialect.now(),
                )
            )
        return result.rowcount == 1

    # ------------------------------------------------------------ checkpoints

    def checkpoint(
        self,
        claim: Claim,
        checkpoint: Checkpoint,
        *,
        finish: RunStatus | None = None,
        output: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record one step's state in one transaction, fenced by the claim's token.

        With ``finish`` the run's final status (and ``output``/``error``) is written in the
        same transaction, so a run is never succeeded without its last step, nor the reverse.
        Raises ``RunCancelled`` when the run was cancelled, ``LeaseLost`` when another owner
        holds it; nothing is written in either case.
        """
        params = {
            "run_id": claim.run_id,
            "token": claim.fencing_token,
            "step": checkpoint.step,
            "item_key": checkpoint.item_key,
            "status": checkpoint.status.value,
            "attempts": checkpoint.attempts,
            "output": checkpoint.output,
            "error": checkpoint.error,
            "events": checkpoint.events,
            "started_at": checkpoint.started_at,
            "finished_at": checkpoint.finished_at,
        }
        if finish is None:
            if self._checkpoint_write.rowcount(params) != 1:
                self._raise_lost(claim, checkpoint)
            return
        try:
            with self.engine.begin() as connection:
                if connection.execute(self._checkpoint_statement, params).rowcount != 1:
                    raise _Fenced
                if not self._finish(connection, claim, finish, output, error):
                    raise _Fenced  # rolls the step back too: both or neither
        except _Fenced:
            self._raise_lost(claim)

    def finish_run(
        self,
        claim: Claim,
        status: RunStatus,
        *,
        output: str | None = None,
        error: str | None = None,
    ) -> None:
        """Set the final status of a claimed run (fenced); raises like ``checkpoint``."""
        with self.engine.begin() as connection:
            written = self._finish(connection, claim, status, output, error)
        if not written:
            self._raise_lost(claim)

    def _finish(
        self,
        connection: Connection,
        claim: Claim,
        status: RunStatus,
        output: str | None,
        error: str | None,
    ) -> bool:
        if not status.finished:
            raise ValueError(f"{status} is not a final status")
        result = connection.execute(
            self._finish_statement,
            {
                "run_id": claim.run_id,
                "token": claim.fencing_token,
                "status": status.value,
                "output": output,
                "error": error,
            },
        )
        return result.rowcount == 1

    def _raise_lost(self, claim: Claim, checkpoint: Checkpoint | None = None) -> None:
        run = self.get_run(claim.run_id)
        if run is None:
            raise RunNotFound(f"run {claim.run_id} no longer exists")
        if run.status is RunStatus.CANCELLED:
            raise RunCancelled(f"run {claim.run_id} was cancelled")
        if (
            checkpoint is not None
            and run.fencing_token == claim.fencing_token
            and run.status is RunStatus.RUNNING
        ):
            item = f" item {checkpoint.item_key!r}" if checkpoint.item_key else ""
            raise DurableError(
                f"step {checkpoint.step!r}{item} of run {claim.run_id} already succeeded; "
                "a finished checkpoint is never overwritten"
            )
        raise LeaseLost(
            f"run {claim.run_id} is no longer owned by {claim.worker_id} "
            f"(token {claim.fencing_token}; now {run.status} with token {run.fencing_token}"
            f"{f' owned by {run.owner}' if run.owner else ''})"
        )

    # ------------------------------------------------------- operator actions

    def cancel(self, run_id: str) -> bool:
        """Cancel a pending or running run; False if it had already finished.

        The token moves on, so the owner's next checkpoint fails with ``RunCancelled`` and it
        stops at that step boundary.
        """
        d = self.dialect
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(_LIVE))
                .values(
                    status=RunStatus.CANCELLED.value,
                    error="cancelled",
                    owner=None,
                    lease_expires_at=None,
                    fencing_token=runs.c.fencing_token + 1,
                    finished_at=d.now(),
                    updated_at=d.now(),
                )
            )
            if result.rowcount == 0:
                exists = connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first()
                if exists is None:
                    raise RunNotFound(f"no run has id {run_id!r}", fix="see `reclaim runs list`")
        return result.rowcount == 1

    def reopen(self, run_id: str) -> RunRecord:
        """Make a failed, cancelled or dead run pending again, keeping its finished steps.

        Failed step rows are removed so those steps run again with a fresh attempt count, and
        the claim count restarts. A pending or running run is returned unchanged; a succeeded
        run cannot be reopened.
        """
        d = self.dialect
        reopenable = (RunStatus.FAILED.value, RunStatus.CANCELLED.value, RunStatus.DEAD.value)
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(runs).where(runs.c.id == run_id).with_for_update()
            ).first()
            if row is None:
                raise RunNotFound(f"no run has id {run_id!r}", fix="see `reclaim runs list`")
            run = run_record(row)
            if run.status.value not in reopenable:
                if run.status is RunStatus.SUCCEEDED:
                    raise RunBusy(f"run {run_id} already succeeded; there is nothing to resume")
                return run
            connection.execute(
                sa.delete(steps).where(
                    steps.c.run_id == run_id, steps.c.status == StepStatus.FAILED.value
                )
            )
            row = connection.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=RunStatus.PENDING.value,
                    error=None,
                    attempts=0,
                    owner=None,
                    lease_expires_at=None,
                    finished_at=None,
                    updated_at=d.now(),
                )
                .returning(*runs.c)
            ).one()
        return run_record(row)

    def delete_run(self, run_id: str) -> bool:
        """Remove a run and its checkpoints (retention clean-up)."""
        with self.engine.begin() as connection:
            connection.execute(sa.delete(steps).where(steps.c.run_id == run_id))
            result = connection.execute(sa.delete(runs).where(runs.c.id == run_id))
        return result.rowcount == 1

    def steps_of(self, run_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        """Checkpoints of several runs, in one query (for listings)."""
        found: dict[str, list[StepRecord]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        query = sa.select(*STEP_COLUMNS).where(steps.c.run_id.in_(list(run_ids)))
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                record = step_record(row)
                found[record.run_id].append(record)
        return found
