"""The workflow the chaos suite kills, and the switch that kills it at a chosen point.

Kill points are counted, in the process that runs the workflow, at every:

- SQL statement executed (``after_cursor_execute``): inside claims, checkpoints, side effects;
- ``before-commit``: the checkpoint's statements are executed but not committed;
- ``after-commit``: the database committed, the process has not acted on it yet;
- ``step-start`` / ``step-end``: the step boundaries, in the step body.

With ``RECLAIM_CHAOS_KILL_AT=N`` the process SIGKILLs itself at the N-th point (SIGSTOPs itself
with ``RECLAIM_CHAOS_SIGNAL=STOP``: frozen there, as by a GC pause or a stuck VM). Points are only
counted in the worker's slot thread, which drives the run, so the heartbeat threads (whose
timing varies) do not shift them: the N-th point is the same place in every run.

Every step writes a keyed side effect (``chaos_effects``, primary key = the step context's
idempotency key, ``ON CONFLICT DO NOTHING``) and appends one line per execution to a log file,
which the test reads to prove nothing completed ran twice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from reclaim.durable import StepContext, Workflow

KILL_AT_ENV = "RECLAIM_CHAOS_KILL_AT"
SIGNAL_ENV = "RECLAIM_CHAOS_SIGNAL"
ITEMS = ("i1", "i2", "i3")

tables = sa.MetaData()
effects = sa.Table(
    "chaos_effects",
    tables,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
)


class KillSwitch:
    """Counts kill points in this process; SIGKILLs it at the ``kill_at``-th one."""

    def __init__(self, kill_at: int | None, signum: int = signal.SIGKILL) -> None:
        self.kill_at = kill_at
        self.signum = signum
        self.count = 0
        self.labels: list[str] = []

    @classmethod
    def from_env(cls) -> KillSwitch:
        value = os.environ.get(KILL_AT_ENV, "").strip()
        name = os.environ.get(SIGNAL_ENV, "KILL").strip().upper()
        return cls(int(value) if value else None, getattr(signal, f"SIG{name}"))

    def hit(self, label: str) -> None:
        # Only the worker's slot thread drives the run; heartbeat and lease-keeping threads
        # run on timers, and counting them would move the N-th point from run to run.
        if not threading.current_thread().name.startswith("durable-slot"):
            return
        self.count += 1
        self.labels.append(label)
        if self.count == self.kill_at:
            os.kill(os.getpid(), self.signum)

    def install(self, engine: Engine) -> None:
        def statement(*_: Any) -> None:
            self.hit("statement")

        def before_commit(_connection: Any) -> None:
            self.hit("before-commit")

        event.listen(engine, "after_cursor_execute", statement)
        event.listen(engine, "commit", before_commit)
        dialect = engine.dialect
        commit: Callable[[Any], None] = dialect.do_commit

        def do_commit(dbapi_connection: Any) -> None:
            commit(dbapi_connection)
            self.hit("after-commit")

        dialect.do_commit = do_commit  # type: ignore[method-assign]


class Harness:
    """What the steps of this process write to: the effects engine, the log, the switch."""

    engine: Engine | None = None
    log_path: str | None = None
    switch: KillSwitch = KillSwitch(None)


def bind(engine: Engine, log_path: str, switch: KillSwitch) -> None:
    Harness.engine, Harness.log_path, Harness.switch = engine, log_path, switch


def value_of(key: str) -> int:
    """The deterministic value a step computes for its key (checked after the resume)."""
    return sum(key.encode()) % 997


def _effect(ctx: StepContext) -> int:
    """One step execution: log it, then apply the keyed side effect once."""
    Harness.switch.hit("step-start")
    assert Harness.engine is not None
    assert Harness.log_path is not None
    key = ctx.idempotency_key
    fd = os.open(Harness.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {key}\n".encode())
    finally:
        os.close(fd)
    value = value_of(key)
    insert = (
        sqlite.insert(effects)
        if Harness.engine.dialect.name == "sqlite"
        else postgresql.insert(effects)
    )
    with Harness.engine.begin() as connection:
        connection.execute(
            insert.values(key=key, run_id=ctx.run_id, value=value).on_conflict_do_nothing()
        )
    Harness.switch.hit("step-end")
    return value


workflow = Workflow("chaos", version="1", max_attempts=1000, register=False)


@workflow.step()
def start(ctx: StepContext) -> list[str]:
    _effect(ctx)
    return list(ITEMS)


@workflow.step(depends_on=("start",))
def left(ctx: StepContext, start: list[str]) -> int:
    return _effect(ctx)


@workflow.step(depends_on=("start",))
def right(ctx: StepContext, start: list[str]) -> int:
    return _effect(ctx)


@workflow.map_step(over="start", key=lambda item: item, concurrency=1)
def items(ctx: StepContext, item: str) -> int:
    return _effect(ctx)


@workflow.step(depends_on=("left", "right", "items"))
def total(ctx: StepContext, left: int, right: int, items: dict[str, int]) -> int:
    return _effect(ctx) + left + right + sum(items.values())


def expected_keys(run_id: str) -> list[str]:
    plain = [f"{run_id}/{name}" for name in ("start", "left", "right", "total")]
    return plain + [f"{run_id}/items/{item}" for item in ITEMS]


def expected_total(run_id: str) -> int:
    """The run's result: every step's value but ``start``'s (which returns the item list)."""
    return sum(value_of(key) for key in expected_keys(run_id) if key != f"{run_id}/start")
