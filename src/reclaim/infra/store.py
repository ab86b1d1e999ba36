"""What the orchestrator keeps in reclaim's database: stack locks, apply intents, outputs.

One SQLAlchemy Core implementation for SQLite and PostgreSQL. Every lock operation is one
conditional statement, so two orchestrators racing for a stack are ordered by the database, and
lock expiry is measured on the database clock (the durable engine's), never on a host's.
"""

from __future__ import annotations

__all__ = ["ApplyIntent", "InfraStore", "LockHeld", "OutputVersion", "StateMark"]

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from reclaim.durable import Store
from reclaim.errors import ExecutionError
from reclaim.store.tables.infra import (
    infra_applies,
    infra_global_outputs,
    infra_locks,
    infra_outputs,
)


class LockHeld(ExecutionError):
    """Another run holds the stack's lock."""


@dataclass(frozen=True)
class StateMark:
    """A state's identity and position: Terraform bumps ``serial`` on every write and keeps
    ``lineage`` for the life of the state. ``None`` fields: no state yet."""

    serial: int | None
    lineage: str | None

    def moved_on_from(self, base: StateMark) -> bool:
        """True when this state was written after ``base`` by the same line of history."""
        if self.serial is None:
            return False
        if base.serial is None:
            return True
        return self.lineage == base.lineage and self.serial > base.serial


@dataclass(frozen=True)
class ApplyIntent:
    run_id: str
    stack: str
    base: StateMark
    started_at: datetime
    finished_at: datetime | None
    result: StateMark
    outcome: str | None


@dataclass(frozen=True)
class OutputVersion:
    stack: str
    version: int
    run_id: str
    digest: str
    outputs: dict[str, Any]
    created_at: datetime


def digest_of(value: Any) -> str:
    """A stable hash of a JSON value (keys sorted), to compare outputs across runs."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class InfraStore:
    """Locks, intents and output history for ``reclaim.infra`` (tables: ``infra_*``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._clock = Store(engine)

    def now(self) -> datetime:
        return self._clock.now()

    # ------------------------------------------------------------------ locks

    def acquire(self, stack: str, run_id: str, lease_seconds: float) -> str | None:
        """Take ``stack`` for ``run_id``; return ``None`` on success, else the holder's run id.

        The run that holds the lock takes it again at once (a resumed run keeps its stacks);
        another run takes it only once the holder's lease has expired.
        """
        now = self.now()
        expires = now + timedelta(seconds=lease_seconds)
        with self.engine.begin() as connection:
            taken = connection.execute(
                sa.update(infra_locks)
                .where(infra_locks.c.stack == stack)
                .where(sa.or_(infra_locks.c.run_id == run_id, infra_locks.c.expires_at < now))
                .values(run_id=run_id, acquired_at=now, expires_at=expires)
            ).rowcount
            if taken:
                return None
            insert = self._insert_ignore(
                infra_locks,
                {"stack": stack, "run_id": run_id, "acquired_at": now, "expires_at": expires},
                ["stack"],
            )
            if _inserted(connection.execute(insert)):
                return None
            holder = connection.execute(
                sa.select(infra_locks.c.run_id).where(infra_locks.c.stack == stack)
            ).scalar_one_or_none()
        return holder if holder is not None else self.acquire(stack, run_id, lease_seconds)

    def renew(self, run_id: str, lease_seconds: float) -> int:
        """Extend every lock ``run_id`` holds; the number renewed."""
        expires = self.now() + timedelta(seconds=lease_seconds)
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    sa.update(infra_locks)
                    .where(infra_locks.c.run_id == run_id)
                    .values(expires_at=expires)
                ).rowcount
            )

    def release(self, stack: str, run_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.delete(infra_locks)
                .where(infra_locks.c.stack == stack)
                .where(infra_locks.c.run_id == run_id)
            )

    def locks(self) -> dict[str, str]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(infra_locks.c.stack, infra_locks.c.run_id))
            return {row.stack: row.run_id for row in rows}

    # ---------------------------------------------------------------- applies

    def intent(self, run_id: str, stack: str) -> ApplyIntent | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(infra_applies)
                .where(infra_applies.c.run_id == run_id)
                .where(infra_applies.c.stack == stack)
            ).one_or_none()
        if row is None:
            return None
        return ApplyIntent(
            run_id=row.run_id,
            stack=row.stack,
            base=StateMark(row.base_serial, row.base_lineage),
            started_at=row.started_at,
            finished_at=row.finished_at,
            result=StateMark(row.serial, row.lineage),
            outcome=row.outcome,
        )

    def record_intent(self, run_id: str, stack: str, base: StateMark) -> None:
        """Written before ``terraform apply`` starts; a second call for the same key is a no-op."""
        insert = self._insert_ignore(
            infra_applies,
            {
                "run_id": run_id,
                "stack": stack,
                "base_serial": base.serial,
                "base_lineage": base.lineage,
                "started_at": self.now(),
            },
            ["run_id", "stack"],
        )
        with self.engine.begin() as connection:
            connection.execute(insert)

    def finish_apply(self, run_id: str, stack: str, result: StateMark, outcome: str) -> None:
        now = self.now()  # read before the transaction: on SQLite a second one would wait on it
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(infra_applies)
                .where(infra_applies.c.run_id == run_id)
                .where(infra_applies.c.stack == stack)
                .values(
                    finished_at=now,
                    serial=result.serial,
                    lineage=result.lineage,
                    outcome=outcome,
                )
            )

    def applies(self, stack: str | None = None) -> list[ApplyIntent]:
        query = sa.select(infra_applies).order_by(infra_applies.c.started_at)
        if stack is not None:
            query = query.where(infra_applies.c.stack == stack)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            ApplyIntent(
                run_id=row.run_id,
                stack=row.stack,
                base=StateMark(row.base_serial, row.base_lineage),
                started_at=row.started_at,
                finished_at=row.finished_at,
                result=StateMark(row.serial, row.lineage),
                outcome=row.outcome,
            )
            for row in rows
        ]

    # ---------------------------------------------------------------- outputs

    def record_outputs(
        self, stack: str, run_id: str, outputs: Mapping[str, Any]
    ) -> tuple[OutputVersion, bool]:
        """Store the outputs ``run_id`` left on ``stack``; return them and whether they changed.

        A new version is written only when they differ from the latest one; recording the
        same run twice (a resumed step) answers from the first record.
        """
        digest = digest_of(outputs)
        for _ in range(3):
            now = self.now()
            with self.engine.begin() as connection:
                mine = connection.execute(
                    sa.select(infra_outputs)
                    .where(infra_outputs.c.stack == stack)
                    .where(infra_outputs.c.run_id == run_id)
                ).one_or_none()
                if mine is not None:
                    return _version(mine), True
                latest = connection.execute(
                    sa.select(infra_outputs)
                    .where(infra_outputs.c.stack == stack)
                    .order_by(infra_outputs.c.version.desc())
                    .limit(1)
                ).one_or_none()
                if latest is not None and latest.digest == digest:
                    return _version(latest), False
                values = {
                    "stack": stack,
                    "version": (latest.version if latest is not None else 0) + 1,
                    "run_id": run_id,
                    "digest": digest,
                    "outputs": json.dumps(dict(outputs), sort_keys=True),
                    "created_at": now,
                }
                inserted = _inserted(
                    connection.execute(
                        self._insert_ignore(infra_outputs, values, ["stack", "version"])
                    )
                )
            if inserted:
                return self.output_versions(stack)[-1], True
        raise ExecutionError(
            f"could not record the outputs of stack {stack!r}: too much contention"
        )

    def output_versions(self, stack: str) -> list[OutputVersion]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(infra_outputs)
                .where(infra_outputs.c.stack == stack)
                .order_by(infra_outputs.c.version)
            ).all()
        return [_version(row) for row in rows]

    def latest_outputs(self, stack: str) -> OutputVersion | None:
        versions = self.output_versions(stack)
        return versions[-1] if versions else None

    def record_global(self, run_id: str, document: Mapping[str, Any]) -> tuple[int, bool]:
        """Store the aggregated global outputs as a new version when they changed."""
        digest = digest_of(document)
        now = self.now()
        with self.engine.begin() as connection:
            latest = connection.execute(
                sa.select(infra_global_outputs)
                .order_by(infra_global_outputs.c.version.desc())
                .limit(1)
            ).one_or_none()
            if latest is not None and latest.digest == digest:
                return int(latest.version), False
            version = (latest.version if latest is not None else 0) + 1
            inserted = _inserted(
                connection.execute(
                    self._insert_ignore(
                        infra_global_outputs,
                        {
                            "version": version,
                            "run_id": run_id,
                            "digest": digest,
                            "document": json.dumps(dict(document), sort_keys=True),
                            "created_at": now,
                        },
                        ["version"],
                    )
                )
            )
        if not inserted:  # another run wrote this version first: compare with it
            return self.record_global(run_id, document)
        return version, True

    def global_versions(self) -> list[tuple[int, str, datetime, dict[str, Any]]]:
        """Every version of the global outputs: (version, run id, when, document)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(infra_global_outputs).order_by(infra_global_outputs.c.version)
            ).all()
        return [(row.version, row.run_id, row.created_at, json.loads(row.document)) for row in rows]

    # ---------------------------------------------------------------- dialect

    def _insert_ignore(
        self, table: sa.Table, values: Mapping[str, Any], keys: list[str]
    ) -> sa.Executable:
        """``INSERT … ON CONFLICT DO NOTHING RETURNING`` the key: a row back means inserted.

        RETURNING rather than ``rowcount``, which psycopg reports as -1 for this statement.
        """
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
        return statement.returning(*(table.c[key] for key in keys))


def _inserted(result: sa.CursorResult[Any]) -> bool:
    # pysqlite gives a RETURNING statement that returned nothing no description at all.
    return result.returns_rows and result.first() is not None


def _version(row: Any) -> OutputVersion:
    return OutputVersion(
        stack=row.stack,
        version=row.version,
        run_id=row.run_id,
        digest=row.digest,
        outputs=json.loads(row.outputs),
        created_at=row.created_at,
    )
