"""The durable engine's public names are frozen: changing them is a deliberate act."""

from __future__ import annotations

from pathlib import Path

import reclaim.durable

PUBLIC = [
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


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.durable.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(reclaim.durable, name), name


def test_durable_never_imports_the_application() -> None:
    import sys

    forbidden = ("reclaim.store", "reclaim.ingest", "reclaim.recommend", "reclaim.tickets")
    for name, module in list(sys.modules.items()):
        if name.startswith("reclaim.durable") and module is not None:
            source = getattr(module, "__file__", "") or ""
            if source.endswith(".py"):
                text = Path(source).read_text(encoding="utf-8")
                for bad in forbidden:
                    assert f"from {bad}" not in text, (name, bad)
                    assert f"import {bad}" not in text, (name, bad)
