"""What every request of one app shares: settings, database, durable engine, tokens, metrics."""

from __future__ import annotations

__all__ = ["ServiceState", "service_state"]

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine
from reclaim.service.metrics import ServiceMetrics
from reclaim.service.settings import ServiceSettings
from reclaim.service.tokens import TokenStore


@dataclass
class ServiceState:
    settings: ServiceSettings
    engine: Engine
    durable: DurableEngine
    tokens: TokenStore
    metrics: ServiceMetrics


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.reclaim
    return state
