"""The reclaim service: the JSON API, the Jira webhook, metrics, health and the scheduler.

``create_app(ServiceSettings(...))`` builds the FastAPI app that ``reclaim serve`` runs with
uvicorn; ``reclaim worker`` processes do the work the scheduler and the API start.
``ConfiguredSchedules`` installs the schedules a ``reclaim.yaml`` names.
"""

from reclaim.service.app import create_app, dashboard_router
from reclaim.service.auth import require_token
from reclaim.service.configured import (
    WEEKLY_WORKFLOW,
    ConfiguredSchedules,
    ScheduleChange,
    configured_origins,
    forget_configured,
    weekly_schedules,
)
from reclaim.service.metrics import DatabaseCollector, ServiceMetrics, WorkerCollector
from reclaim.service.scheduler import ScheduleLoop
from reclaim.service.settings import ServiceSettings
from reclaim.service.state import ServiceState, service_state
from reclaim.service.tokens import ApiToken, TokenStore, hash_token

__all__ = [
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
]
