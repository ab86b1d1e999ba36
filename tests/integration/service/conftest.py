"""A database with the bundled sample's facts, recommendations and a few tickets, per backend."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from reclaim.ingest import load_facts
from reclaim.ingest.ledger import collect_into
from reclaim.recommend import RecommendationStore, load_pack, recommend
from reclaim.service import ServiceSettings, TokenStore, create_app
from reclaim.store import upgrade
from reclaim.sync import TicketLedger


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    sample = pytest.importorskip("reclaim.ingest.sample")
    files = sample.generate_sample(
        tmp_path_factory.mktemp("sample"), resources=300, days=35, seed=7
    )
    return files.billing, files.inventory, files.utilization


@pytest.fixture
def loaded(engine: Engine, sample_files: tuple[Path, Path, Path]) -> Engine:
    """The engine's database migrated, with facts, one recommend run and three tickets."""
    upgrade(engine)
    billing, inventory, utilization = sample_files
    collect_into(engine, [billing], [inventory], [utilization])
    recommend(engine, load_facts(engine), load_pack(), run_id="week-1")
    records = RecommendationStore(engine).find(limit=3)
    ledger = TicketLedger(engine)
    now = datetime.now(UTC)
    ledger.record_intents([(r.fingerprint, "OPS") for r in records], now)
    ledger.record_created(
        [
            (r.fingerprint, r.id, f"OPS-{n}", str(1000 + n), f"https://jira.example/browse/OPS-{n}")
            for n, r in enumerate(records[:2], start=1)
        ],
        now,
    )
    return engine


@pytest.fixture
def token(loaded: Engine) -> str:
    return TokenStore(loaded).create("tests")


@contextmanager
def _served(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on a real port (uvicorn in a thread, lifespan on), and a client for it.

    Real HTTP rather than Starlette's TestClient: it exercises what uvicorn does in production
    (lifespan, headers), and TestClient now warns about its httpx dependency.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        threading.Event().wait(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


@pytest.fixture
def serve() -> Serve:
    """Serve an app for the duration of a ``with`` block: ``with serve(app) as client``."""
    return _served


@pytest.fixture
def client(loaded: Engine, token: str) -> Iterator[httpx.Client]:
    app = create_app(ServiceSettings(schedules=False), engine=loaded, dashboard=False)
    with _served(app) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        yield http
