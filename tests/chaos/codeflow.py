"""A workflow whose code is changed between a crash and the resume, as a deploy would.

``CODEFLOW_VARIANT`` picks the code this process declares: ``original``; ``rekeyed`` (the map
step keys its items by title instead of id); ``renamed`` (the map step is called
``open_ticket``). ``CODEFLOW_DB`` is where the keyed side effects go, ``CODEFLOW_LOG`` a file
with one line per step execution, and ``CODEFLOW_KILL_AFTER=N`` SIGKILLs the process right
after the N-th item's side effect committed (its checkpoint not yet written).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import StepContext, Workflow

COUNT = 6
VARIANT = os.environ.get("CODEFLOW_VARIANT", "original")
MAP_STEP = "open_ticket" if VARIANT == "renamed" else "create"

tables = sa.MetaData()
effects = sa.Table(
    "codeflow_effects",
    tables,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
)

_engine: Engine | None = None
_items_done = 0


def _database() -> Engine:
    global _engine
    if _engine is None:
        _engine = create_engine(os.environ["CODEFLOW_DB"])
    return _engine


def _effect(ctx: StepContext, *, item: bool = False) -> None:
    global _items_done
    with open(os.environ["CODEFLOW_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {ctx.idempotency_key}\n")
    engine = _database()
    insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
    with engine.begin() as connection:
        connection.execute(
            insert(effects)
            .values(key=ctx.idempotency_key, run_id=ctx.run_id)
            .on_conflict_do_nothing()
        )
    if item:
        _items_done += 1
        if str(_items_done) == os.environ.get("CODEFLOW_KILL_AFTER"):
            os.kill(os.getpid(), signal.SIGKILL)


workflow = Workflow("codechange", version="1", max_attempts=100)


@workflow.step()
def tickets(ctx: StepContext) -> list[dict[str, str]]:
    _effect(ctx)
    return [{"id": f"t-{n}", "title": f"ticket {n}"} for n in range(COUNT)]


def _key(ticket: dict[str, str]) -> str:
    return ticket["title"] if VARIANT == "rekeyed" else ticket["id"]


@workflow.map_step(over="tickets", key=_key, name=MAP_STEP, concurrency=1)
def create(ctx: StepContext, item: dict[str, str]) -> str:
    _effect(ctx, item=True)
    return f"JIRA-{item['id']}"


@workflow.step(depends_on=(MAP_STEP,))
def report(ctx: StepContext, **created: Any) -> int:
    _effect(ctx)
    return len(created[MAP_STEP])


def expected_keys(run_id: str) -> list[str]:
    return [
        f"{run_id}/tickets",
        *(f"{run_id}/create/t-{n}" for n in range(COUNT)),
        f"{run_id}/report",
    ]
