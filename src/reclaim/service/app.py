"""The service's app factory: ``create_app(settings) -> FastAPI``.

    app = create_app(ServiceSettings(database_url="postgresql://…"))
    uvicorn.run(app)

What it serves:

- ``/api/v1/…``: the JSON API (token required), documented at ``/docs`` and ``/openapi.json``;
- ``/jira/webhook``: the Jira webhook receiver of :mod:`reclaim.sync` (signed by its secret,
  so mounted only when a secret is configured);
- ``/healthz`` (the process answers), ``/readyz`` (the database answers and is migrated),
  ``/metrics`` (Prometheus): no token, for probes and scrapers;
- the dashboard (:mod:`reclaim.dashboard`, ``create_router(engine)``) at ``/``, behind the same
  tokens: a browser logs in once at ``/login`` and keeps the token in an HttpOnly, SameSite
  cookie; more routers can be passed as ``routers`` (protect them with
  ``Depends(require_token)`` if they need it).

The lifespan starts the scheduler (when ``settings.schedules``) and stops it on shutdown; its
first pass installs the schedules of the configuration file (``schedules``), if given.
"""

from __future__ import annotations

__all__ = ["create_app", "dashboard_router"]

import importlib
import importlib.util
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine

from reclaim import __version__
from reclaim.durable import DurableEngine, Schedule
from reclaim.errors import ReclaimError
from reclaim.service.api import router as api_router
from reclaim.service.auth import login_router, require_browser_token
from reclaim.service.configured import ConfiguredSchedules
from reclaim.service.metrics import ServiceMetrics
from reclaim.service.scheduler import ScheduleLoop
from reclaim.service.settings import ServiceSettings
from reclaim.service.state import ServiceState
from reclaim.service.tokens import TokenStore
from reclaim.store import create_engine, migration_status, resolve_database_url
from reclaim.sync import WebhookReceiver

log = logging.getLogger(__name__)

DASHBOARD_MODULE = "reclaim.dashboard"
DOCS_STATIC_PREFIX = "/docs-static"


def dashboard_router(state: ServiceState) -> APIRouter | None:
    """The dashboard's pages over the service's database, when the package is installed."""
    if importlib.util.find_spec(DASHBOARD_MODULE) is None:
        return None
    module = importlib.import_module(DASHBOARD_MODULE)
    create_router: Any = getattr(module, "create_router", None)
    built = create_router(state.engine) if callable(create_router) else None
    if not isinstance(built, APIRouter):
        raise ReclaimError(
            f"{DASHBOARD_MODULE}.create_router(engine) did not give an APIRouter",
            fix="see reclaim.service.app for what the service expects of the dashboard",
        )
    return built


def create_app(
    settings: ServiceSettings,
    *,
    engine: Engine | None = None,
    routers: Iterable[APIRouter] = (),
    dashboard: bool = True,
    schedules: Sequence[Schedule] | None = None,
    schedules_source: str = "reclaim.yaml",
) -> FastAPI:
    """Build the service. ``engine`` overrides ``settings.database_url`` (tests, embedding).

    ``schedules`` are the schedules a configuration file (``schedules_source``) names: the
    scheduler installs them at start and removes those the file no longer names. ``None``
    leaves the stored schedules as they are.
    """
    owned = engine is None
    database = engine or create_engine(resolve_database_url(settings.database_url))
    metrics = ServiceMetrics(database)
    durable = DurableEngine(database)
    state = ServiceState(
        settings=settings,
        engine=database,
        durable=durable,
        tokens=TokenStore(database),
        metrics=metrics,
    )
    configured = (
        ConfiguredSchedules(durable, schedules, source=schedules_source)
        if schedules is not None
        else None
    )
    loop = (
        ScheduleLoop(
            durable,
            interval=settings.schedule_interval,
            metrics=metrics,
            configured=configured,
        )
        if settings.schedules
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if loop is not None:
            loop.start()
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()
            if owned:
                database.dispose()

    # The API docs (/docs, /redoc) with Swagger UI's and ReDoc's scripts served from a
    # package (fastapi-offline) instead of a CDN: they work on a machine without internet.
    app = FastAPIOffline(
        title="reclaim",
        version=__version__,
        description="Cloud savings found, ticketed to their owners, followed to done.",
        lifespan=lifespan,
        static_url=DOCS_STATIC_PREFIX,
    )
    app.state.reclaim = state
    app.state.scheduler = loop

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # The route's template, never the raw path: ids in paths would make a series per id.
        name = getattr(route, "path", None) or "unmatched"
        metrics.observe(request.method, name, response.status_code, started)
        return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up (no database call: a liveness probe must not restart a healthy
        process because the database is down)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The database answers and has every migration; 503 with the reason otherwise."""
        try:
            status = migration_status(database)
        except ReclaimError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        if not status.up_to_date:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "reason": "the database lacks migrations; run `reclaim db upgrade`",
                    "pending": [revision.id for revision in status.pending],
                },
                status_code=503,
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router)
    for router in routers:
        app.include_router(router)
    if dashboard and (built := dashboard_router(state)) is not None:
        app.include_router(login_router())
        app.include_router(built, dependencies=[Depends(require_browser_token)])

    if settings.webhook_secret is not None:
        receiver = WebhookReceiver(
            database, settings.webhook_secret.get_secret_value(), path="/webhook"
        )
        app.mount("/jira", receiver.app)
    else:
        log.info("no Jira webhook secret is set: /jira/webhook is off (the poll still syncs)")
    return app
