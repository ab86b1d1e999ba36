"""The dashboard: server-rendered pages over reclaim's database, for people.

:func:`create_router` returns the pages as a FastAPI ``APIRouter`` that ``reclaim serve`` mounts
at ``/`` (and wraps with its authentication); :func:`standalone_app` is the same router in an
application of its own, what ``reclaim dashboard`` serves. No JavaScript and no build step: the
HTML, the inline SVG charts and one stylesheet are rendered and served from this package.
"""

from __future__ import annotations

__all__ = [
    "STATIC_PREFIX",
    "TICKET_CHUNK_STEPS",
    "create_router",
    "standalone_app",
    "tickets_in_item",
]

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reclaim.dashboard.routes import STATIC_PREFIX, create_router
from reclaim.dashboard.units import TICKET_CHUNK_STEPS, tickets_in_item
from reclaim.database import create_engine


def standalone_app(database_url: str | Engine, *, overview_ttl: float = 30.0) -> FastAPI:
    """An application serving only the dashboard over ``database_url`` (a URL or an engine).

    It has no authentication: bind it to 127.0.0.1 (the default of ``reclaim dashboard``) or
    put it behind ``reclaim serve``.
    """
    engine = database_url if isinstance(database_url, Engine) else create_engine(database_url)
    app = FastAPI(title="reclaim dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(engine, overview_ttl=overview_ttl))
    return app
