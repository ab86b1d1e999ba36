"""A workflow with keyed side effects, run in a child process that the crash tests kill.

Run as ``python -m crashflow URL RUN_ID`` (with this folder on PYTHONPATH). Every item writes
two rows: one into ``crash_effects`` keyed by ``ctx.idempotency_key`` (the side effect that
must happen exactly once) and one into ``crash_executions`` (a log of every execution, to
prove no finished item ran again).
"""

from __future__ import annotations

import os
import sys
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, StepContext, Workflow

ITEMS = 24

tables = sa.MetaData()
effects = sa.Table(
    "crash_effects",
    tables,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("pid", sa.Integer, nullable=False),
)
executions = sa.Table(
    "crash_executions",
    tables,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)

workflow = Workflow("crash-demo", version="1")
_engine: dict[str, Engine] = {}


def _insert_once(engine: Engine, key: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(executions).values(key=key, pid=os.getpid()))
    insert: sa.Insert
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = sqlite_insert(effects).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert(effects).on_conflict_do_nothing()
    with engine.begin() as connection:
        connection.execute(insert.values(key=key, pid=os.getpid()))


@workflow.step()
def prepare(ctx: StepContext) -> list[str]:
    _insert_once(_engine["db"], ctx.idempotency_key)
    return [f"item-{n:03d}" for n in range(ITEMS)]


@workflow.map_step(over="prepare", key=lambda item: item, concurrency=1)
def effect(ctx: StepContext, item: str) -> str:
    _insert_once(_engine["db"], ctx.idempotency_key)
    time.sleep(0.01)
    return item.upper()


@workflow.step(depends_on=("effect",))
def summary(ctx: StepContext, effect: dict[str, str]) -> int:
    _insert_once(_engine["db"], ctx.idempotency_key)
    return len(effect)


def bind(engine: Engine) -> None:
    """Point the steps' side effects at this database (the CLI path calls it on import)."""
    _engine["db"] = engine
    tables.create_all(engine, checkfirst=True)


if os.environ.get("CRASHFLOW_DB"):
    bind(create_engine(os.environ["CRASHFLOW_DB"], schema=os.environ.get("CRASHFLOW_SCHEMA")))


if __name__ == "__main__":
    url, run_id = sys.argv[1], sys.argv[2]
    engine = create_engine(url, schema=os.environ.get("CRASHFLOW_SCHEMA"))
    bind(engine)
    DurableEngine(engine).run(run_id)
