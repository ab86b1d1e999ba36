"""The durable execution engine: checkpointed workflows that resume after any crash.

Declare a ``Workflow`` of steps, run it with a ``DurableEngine`` on SQLite or PostgreSQL. Every
finished step is checkpointed in one transaction; a run that stopped (crash, failure,
cancellation) resumes at the first unfinished step and never re-runs a finished one.
This package knows nothing of FinOps; it builds only on ``reclaim.database`` and
``reclaim.errors``.
"""

from reclaim.durable.context import StepContext
from reclaim.durable.engine import DurableEngine, new_worker_id
from reclaim.durable.errors import (
    DefinitionMismatch,
    DurableError,
    LeaseLost,
    RunBusy,
    RunCancelled,
    RunNotFound,
    StepFailed,
    StepTimeout,
    UnknownWorkflow,
    WorkflowTimeout,
)
from reclaim.durable.executor import Executor, ParallelExecutor, SequentialExecutor
from reclaim.durable.queue import ItemClaim, ItemQueue
from reclaim.durable.records import (
    Checkpoint,
    Claim,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from reclaim.durable.retry import RetryDecision, RetryPolicy
from reclaim.durable.schedule import CronExpression, Schedule, Scheduler, ScheduleTick
from reclaim.durable.schema import ensure_schema, metadata
from reclaim.durable.store import Store
from reclaim.durable.worker import Worker, WorkerStats, WorkerStopping
from reclaim.durable.workflow import StepKind, StepSpec, Workflow, WorkflowRegistry, registry

__all__ = [
    "Checkpoint",
    "Claim",
    "CronExpression",
    "DefinitionMismatch",
    "DurableEngine",
    "DurableError",
    "Executor",
    "ItemClaim",
    "ItemQueue",
    "LeaseLost",
    "ParallelExecutor",
    "RetryDecision",
    "RetryPolicy",
    "RunBusy",
    "RunCancelled",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "Schedule",
    "ScheduleTick",
    "Scheduler",
    "SequentialExecutor",
    "StepContext",
    "StepFailed",
    "StepKind",
    "StepRecord",
    "StepSpec",
    "StepStatus",
    "StepTimeout",
    "Store",
    "UnknownWorkflow",
    "Worker",
    "WorkerStats",
    "WorkerStopping",
    "Workflow",
    "WorkflowRegistry",
    "WorkflowTimeout",
    "ensure_schema",
    "metadata",
    "new_worker_id",
    "registry",
]
