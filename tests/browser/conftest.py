"""A real dashboard on a real port over a real database, and Debian's Chromium driving it.

The database holds what the product writes: the bundled sample collected and evaluated by the
savings rules (so the explanation is the rules engine's), tickets for some of it, a poll cursor,
and durable runs of the workflows in ``dashflows.py``. Chromium is the system's
(``/usr/bin/chromium``, Debian's package); without it every test here skips, saying so.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine

from reclaim.dashboard import standalone_app
from reclaim.database import create_engine
from reclaim.durable import DurableEngine, StepFailed
from reclaim.ingest import bundled_sample, collect_into, load_facts
from reclaim.recommend import load_pack, recommend
from reclaim.store import upgrade
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, sync_cursors, tickets
from reclaim.sync import DistributeInput, distribute_workflow
from reclaim.tickets.credentials import EMAIL_ENV, TOKEN_ENV, URL_ENV
from reclaim.tickets.simulator import SimulatorApp, run_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dashflows as flows

CHROMIUM_ENV = "RECLAIM_CHROMIUM"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get(CHROMIUM_ENV),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    return found


@dataclass
class Site:
    url: str
    engine: Engine
    durable: DurableEngine
    blocker: Path
    explained_id: int
    ticketed_id: int
    failed_run: str
    pending_run: str
    batch_run: str
    chunk_run: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seed(engine: Engine, tmp: Path) -> Site:
    upgrade(engine)
    sample = bundled_sample()
    collect_into(
        engine,
        billing=[str(sample.billing)],
        inventory=[str(sample.inventory)],
        utilization=[str(sample.utilization)],
    )
    recommend(engine, load_facts(engine), load_pack())
    rec = recommendations.c
    now = datetime.now(UTC)
    with engine.begin() as connection:
        ids = list(
            connection.execute(
                sa.select(rec.id).order_by(rec.monthly_savings.desc(), rec.id)
            ).scalars()
        )
        # Spread discovery over ten weeks and move part of it down the funnel, as weeks of
        # real runs would: the charts then have a history to draw.
        for position, rec_id in enumerate(ids):
            first_seen = now - timedelta(days=70 - (position % 10) * 7)
            values: dict[str, object] = {"first_seen": first_seen}
            if position % 3 == 0:
                values |= {"status": "ticketed", "ticketed_at": first_seen + timedelta(days=2)}
            if position % 6 == 0:
                values |= {
                    "status": "implemented",
                    "ticket_done_at": first_seen + timedelta(days=9),
                    "implemented_at": first_seen + timedelta(days=14),
                    "realized_monthly_savings": sa.cast(
                        rec.monthly_savings * Decimal("0.9"), rec.monthly_savings.type
                    ),
                }
            connection.execute(sa.update(recommendations).where(rec.id == rec_id).values(**values))
        ticketed_id = ids[3]
        fingerprint = connection.execute(
            sa.select(rec.fingerprint).where(rec.id == ticketed_id)
        ).scalar_one()
        ticket_id = connection.execute(
            tickets.insert()
            .values(
                fingerprint=fingerprint,
                state="created",
                system="jira",
                project="OPS",
                key="OPS-42",
                issue_id="10042",
                url="http://127.0.0.1:9/browse/OPS-42",
                status="In Progress",
                status_category="indeterminate",
                intent_at=now - timedelta(days=3),
                created_at=now - timedelta(days=3),
                last_synced_at=now - timedelta(hours=2),
                attempts=1,
            )
            .returning(tickets.c.id)
        ).scalar_one()
        connection.execute(
            recommendation_tickets.insert().values(
                recommendation_id=ticketed_id, ticket_id=ticket_id
            )
        )
        connection.execute(
            tickets.insert().values(
                fingerprint="f" * 64,
                state="creating",
                system="jira",
                project="OPS",
                intent_at=now - timedelta(minutes=5),
                attempts=2,
            )
        )
        connection.execute(
            sync_cursors.insert().values(
                source="jira:OPS",
                cursor_ms=int((now - timedelta(minutes=20)).timestamp() * 1000),
                updated_at=now - timedelta(minutes=15),
            )
        )
    durable = DurableEngine(engine)
    batch_run = durable.start(flows.batch)
    durable.run(batch_run)
    blocker = tmp / "blocker"
    blocker.write_text("remove me to let the run finish")
    failed_run = durable.start(flows.gate, flows.gate_input(blocker))
    with pytest.raises(StepFailed):
        durable.run(failed_run)
    pending_run = durable.start(flows.gate, flows.gate_input(tmp / "no-blocker"))
    # The real ticket distribution, against the Jira simulator: 23 tickets in chunks of 10.
    with run_in_thread(SimulatorApp()) as sim, _jira_env(sim.url):
        options = DistributeInput(
            default_project="OPS", grace=0, limit=23, ticket_batch=10, requests_per_second=None
        )
        chunk_run = durable.start(distribute_workflow, options.model_dump())
        durable.run(chunk_run)
    return Site(
        url="",
        engine=engine,
        durable=durable,
        blocker=blocker,
        explained_id=ids[0],
        ticketed_id=ticketed_id,
        failed_run=failed_run,
        pending_run=pending_run,
        batch_run=batch_run,
        chunk_run=chunk_run,
    )


@contextmanager
def _jira_env(url: str) -> Iterator[None]:
    """The distribute workflow reads its Jira site and token from the environment."""
    values = {URL_ENV: url, EMAIL_ENV: "bot@example.com", TOKEN_ENV: "t"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium found (looked at $RECLAIM_CHROMIUM, /usr/bin/chromium, PATH): "
            "`apt-get install chromium` to run the browser tests"
        )
    return path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("dashboard")
    engine = create_engine(f"sqlite:///{tmp / 'reclaim.db'}")
    seeded = _seed(engine, tmp)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            standalone_app(engine, overview_ttl=0), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    seeded.url = f"http://127.0.0.1:{port}"
    try:
        yield seeded
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def shoot(page: object, name: str) -> Path:
    """A full-page screenshot into tests/browser/screenshots (ignored by git) to look at."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
