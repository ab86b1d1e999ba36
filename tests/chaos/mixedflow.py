"""The workflow of the mixed takeover test: a map step whose items several processes share.

Each item execution appends ``<pid> <time> <idempotency key>`` to the file named by
``MIXED_TAKEOVER_LOG`` and writes a keyed side effect through ``ctx.database`` (the run's own
database, so ``reclaim runs resume --module mixedflow`` needs nothing else bound).
"""

from __future__ import annotations

import os
import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from reclaim.durable import StepContext, Workflow

LOG_ENV = "MIXED_TAKEOVER_LOG"
ITEMS = [f"item-{n:02d}" for n in range(30)]
ITEM_SECONDS = 0.1

tables = sa.MetaData()
effects = sa.Table(
    "mixed_effects",
    tables,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("pid", sa.Integer, nullable=False),
)

workflow = Workflow("mixed-takeover", version="1", max_attempts=100)


@workflow.step()
def keys(ctx: StepContext) -> list[str]:
    return list(ITEMS)


@workflow.map_step(over="keys", key=lambda item: item, concurrency=2)
def work(ctx: StepContext, item: str) -> str:
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {time.time():.6f} {ctx.idempotency_key}\n".encode())
    finally:
        os.close(fd)
    # The test kills the owner once both workers have run items: on a loaded machine the owner
    # could finish every item before the helper got going, so items wait (bounded) for a
    # second process to appear in the log.
    deadline = time.monotonic() + 30
    while len(_pids(os.environ[LOG_ENV])) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(ITEM_SECONDS)
    assert ctx.database is not None
    with ctx.database.begin() as connection:
        connection.execute(
            postgresql.insert(effects)
            .values(key=ctx.idempotency_key, pid=os.getpid())
            .on_conflict_do_nothing()
        )
    return item.upper()


def _pids(log: str) -> set[str]:
    with open(log) as lines:
        return {line.split(" ", 1)[0] for line in lines if line.strip()}


@workflow.step(depends_on=("work",))
def total(ctx: StepContext, work: dict[str, str]) -> int:
    return len(work)
