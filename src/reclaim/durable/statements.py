"""The statements the store runs on every step and every run, built once per store.

Building a SQLAlchemy statement (and its cache key) costs more than running a compiled one, so
the hot statements are built here with bound parameters and reused. Row mappers live here too.
"""

from __future__ import annotations

__all__ = [
    "QUEUED",
    "STEP_COLUMNS",
    "checkpoint",
    "finish_run",
    "insert_run",
    "run_record",
    "step_record",
]

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from reclaim.durable.dialect import Dialect
from reclaim.durable.records import RunRecord, RunStatus, StepRecord, StepStatus
from reclaim.durable.schema import UtcDateTime, runs, steps


def run_record(row: Row[Any]) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"],
        workflow=m["workflow"],
        version=m["version"],
        fingerprint=m["fingerprint"],
        definition=m["definition"],
        status=RunStatus(m["status"]),
        input=m["input"],
        output=m["output"],
        error=m["error"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        owner=m["owner"],
        lease_expires_at=m["lease_expires_at"],
        fencing_token=m["fencing_token"],
        dedupe_key=m["dedupe_key"],
        timeout_at=m["timeout_at"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
    )


def step_record(row: Row[Any] | Any) -> StepRecord:
    m = row._mapping
    return StepRecord(
        run_id=m["run_id"],
        step=m["step"],
        item_key=m["item_key"],
        status=StepStatus(m["status"]),
        attempts=m["attempts"],
        output=m["output"],
        error=m["error"],
        events=m["events"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        queued=bool(m.get("queued", False)),
    )


STEP_COLUMNS = (
    steps.c.run_id,
    steps.c.step,
    steps.c.item_key,
    steps.c.status,
    steps.c.attempts,
    steps.c.output,
    steps.c.error,
    steps.c.events,
    steps.c.started_at,
    steps.c.finished_at,
)


# Only the item queue writes pending rows or gives a row a lease and a token.
QUEUED = sa.or_(
    steps.c.status == StepStatus.PENDING.value,
    steps.c.fencing_token > 0,
    steps.c.lease_expires_at.is_not(None),
).label("queued")


def checkpoint(d: Dialect) -> Any:
    """The fenced upsert of one step row (see ``Store.checkpoint``)."""
    # INSERT … SELECT FROM durable_runs WHERE token matches: the fencing check and the
    # write are one statement, so the hot path is one round trip and one commit.
    source = (
        sa.select(
            runs.c.id,
            sa.bindparam("step", type_=sa.String),
            sa.bindparam("item_key", type_=sa.String),
            sa.bindparam("status", type_=sa.String),
            sa.bindparam("attempts", type_=sa.Integer),
            sa.bindparam("output", type_=sa.Text),
            sa.bindparam("error", type_=sa.Text),
            sa.bindparam("events", type_=sa.Text),
            sa.bindparam("started_at", type_=UtcDateTime()),
            sa.bindparam("finished_at", type_=UtcDateTime()),
        )
        .where(
            runs.c.id == sa.bindparam("run_id", type_=sa.String),
            runs.c.fencing_token == sa.bindparam("token", type_=sa.BigInteger),
        )
        .with_for_update(read=True)
    )
    insert = d.insert(steps).from_select([c.name for c in STEP_COLUMNS], source)
    excluded = insert.excluded
    # psycopg 3 forgets an INSERT's rowcount once SQLAlchemy closes the cursor.
    return insert.execution_options(preserve_rowcount=True).on_conflict_do_update(
        index_elements=[steps.c.run_id, steps.c.step, steps.c.item_key],
        set_={
            "status": excluded.status,
            "attempts": excluded.attempts,
            "output": excluded.output,
            "error": excluded.error,
            "events": excluded.events,
            # The first attempt's start survives retries and resumes.
            "started_at": sa.func.coalesce(steps.c.started_at, excluded.started_at),
            "finished_at": excluded.finished_at,
        },
        # A finished checkpoint is final: nothing (an abandoned attempt still running in its
        # thread, say) may turn it back into a running one.
        where=steps.c.status != StepStatus.SUCCEEDED.value,
    )


def insert_run(d: Dialect, *, claimed: bool) -> Any:
    """Insert a run, pending or already claimed by the bound owner; returns its row."""
    # Explicit casts: PostgreSQL cannot infer a parameter's type inside IS NULL or a function.
    timeout = sa.cast(sa.bindparam("timeout_seconds", type_=sa.Float), sa.Float)
    lease = sa.cast(sa.bindparam("lease", type_=sa.Float), sa.Float)
    names = ("id", "workflow", "version", "fingerprint", "definition", "input")
    values: dict[str, Any] = {name: sa.bindparam(name, type_=sa.String) for name in names}
    values.update(
        max_attempts=sa.bindparam("max_attempts", type_=sa.Integer),
        dedupe_key=sa.bindparam("dedupe_key", type_=sa.String),
        status=sa.bindparam("status", type_=sa.String),
        attempts=sa.bindparam("attempts", type_=sa.Integer),
        fencing_token=sa.bindparam("fencing_token", type_=sa.BigInteger),
        owner=sa.bindparam("owner", type_=sa.String),
        lease_expires_at=d.later(lease) if claimed else None,
        started_at=d.now() if claimed else None,
        timeout_at=sa.case((timeout.is_(None), None), else_=d.later(timeout)),
        created_at=d.now(),
        updated_at=d.now(),
    )
    return d.insert(runs).values(**values).on_conflict_do_nothing().returning(*runs.c)


def finish_run(d: Dialect) -> Any:
    """The fenced update that gives a claimed run its final status."""
    return (
        sa.update(runs)
        .where(
            runs.c.id == sa.bindparam("run_id", type_=sa.String),
            runs.c.fencing_token == sa.bindparam("token", type_=sa.BigInteger),
            runs.c.status == RunStatus.RUNNING.value,
        )
        .values(
            status=sa.bindparam("status", type_=sa.String),
            output=sa.bindparam("output", type_=sa.Text),
            error=sa.bindparam("error", type_=sa.Text),
            owner=None,
            lease_expires_at=None,
            finished_at=d.now(),
            updated_at=d.now(),
        )
    )
