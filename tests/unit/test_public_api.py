"""Each package's public names are frozen: changing them is a deliberate act."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_API = {
    "reclaim": ["__version__"],
    "reclaim.errors": [
        "ConfigError",
        "DatabaseError",
        "ExecutionError",
        "ReclaimError",
        "SourceLocation",
    ],
    "reclaim.dashboard": [
        "STATIC_PREFIX",
        "TICKET_CHUNK_STEPS",
        "create_router",
        "standalone_app",
        "tickets_in_item",
    ],
    "reclaim.infra": [
        "CONFIG_FILE",
        "DriftReport",
        "Edge",
        "GraphFormat",
        "InfraConfig",
        "InfraRun",
        "InfraStore",
        "LockHeld",
        "Orchestrator",
        "OutputVersion",
        "PlanOutcome",
        "RunInput",
        "Stack",
        "StackGraph",
        "StackResult",
        "StackStatus",
        "StateAddress",
        "StateMark",
        "Terraform",
        "TerraformFailed",
        "load_config",
    ],
    "reclaim.store": [
        "DATABASE_URL_ENV",
        "Backend",
        "MigrationStatus",
        "Revision",
        "all_metadata",
        "backend_of",
        "check_connection",
        "create_engine",
        "default_database_url",
        "metadata",
        "migration_status",
        "redact_url",
        "resolve_database_url",
        "schema_drift",
        "upgrade",
    ],
    "reclaim.service": [
        "WEEKLY_WORKFLOW",
        "ApiToken",
        "ConfiguredSchedules",
        "DatabaseCollector",
        "ScheduleChange",
        "ScheduleLoop",
        "ServiceMetrics",
        "ServiceSettings",
        "ServiceState",
        "TokenStore",
        "WorkerCollector",
        "configured_origins",
        "create_app",
        "dashboard_router",
        "forget_configured",
        "hash_token",
        "require_token",
        "service_state",
        "weekly_schedules",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_API))
def test_public_names_are_frozen(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC_API[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which is missing"
