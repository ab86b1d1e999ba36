"""Plain values that the store hands out and takes in: runs, steps, claims, checkpoints."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Checkpoint",
    "Claim",
    "RunRecord",
    "RunStatus",
    "StepRecord",
    "StepStatus",
]

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# A run claimed this many times without finishing (its processes keep dying) is marked dead.
DEFAULT_MAX_ATTEMPTS = 10


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class RunRecord:
    """One run as stored. ``input``/``output`` are JSON text; decode them with the workflow."""

    id: str
    workflow: str
    version: str
    fingerprint: str
    definition: str
    status: RunStatus
    input: str
    output: str | None
    error: str | None
    attempts: int
    max_attempts: int
    owner: str | None
    lease_expires_at: datetime | None
    fencing_token: int
    dedupe_key: str | None
    timeout_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class StepRecord:
    """One checkpoint: a plain step (``item_key == ''``) or one item of a map step."""

    run_id: str
    step: str
    item_key: str
    status: StepStatus
    attempts: int
    output: str | None
    error: str | None
    events: str | None
    started_at: datetime | None
    finished_at: datetime | None
    # The item went through the shared item queue: another process may hold it, so only the
    # queue may hand it out (never a direct re-run by whoever takes the run over).
    queued: bool = False

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class Claim:
    """Ownership of a run until ``lease_expires_at`` (database clock), proven by the token.

    Every write made on behalf of the claim carries ``fencing_token``; once another owner has
    claimed the run the token is stale and the write fails with ``LeaseLost``.
    """

    run: RunRecord
    worker_id: str
    fencing_token: int
    lease_expires_at: datetime
    db_now: datetime

    @property
    def run_id(self) -> str:
        return self.run.id


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint write records for a step or map item."""

    step: str
    item_key: str
    status: StepStatus
    attempts: int
    output: str | None = None
    error: str | None = None
    events: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
