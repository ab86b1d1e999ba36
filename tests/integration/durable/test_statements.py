"""The storage promises, counted statement by statement (SQLite's trace sees every one).

- a step's checkpoint is one INSERT and one commit, with no read on the hot path;
- the last step's checkpoint and the run's final status share one transaction;
- a resume reads all of a run's checkpoints with one query.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from reclaim.database import create_engine
from reclaim.durable import DurableEngine, StepContext, Workflow, ensure_schema


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[Engine, list[str]]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'traced.db'}")
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    ensure_schema(engine)
    try:
        yield engine, statements
    finally:
        engine.dispose()


def _chain(name: str, steps: int, crash_at: int | None = None) -> Workflow:
    wf = Workflow(name, register=False)
    previous: str | None = None
    for n in range(steps):

        def step(ctx: StepContext, n: int = n, **_: Any) -> int:
            if n == crash_at:
                raise KeyboardInterrupt  # the process "dies" here
            return n

        wf.step(name=f"s{n}", depends_on=(previous,) if previous else ())(step)
        previous = f"s{n}"
    return wf


def _count(statements: list[str], prefix: str, table: str = "") -> int:
    return sum(1 for s in statements if s.lstrip().upper().startswith(prefix) and table in s)


def test_a_checkpoint_is_one_insert_and_one_commit(traced: tuple[Engine, list[str]]) -> None:
    engine, statements = traced
    wf = _chain("counted", 20)
    durable = DurableEngine(engine, workflows=[wf])
    statements.clear()
    assert durable.run_workflow(wf) == 19
    assert _count(statements, "INSERT", "durable_steps") == 20
    assert _count(statements, "SELECT", "durable_steps") == 0  # no reads on the hot path
    # start+claim, 19 checkpoints, then the last checkpoint with the final status.
    assert _count(statements, "COMMIT") == 21
    assert _count(statements, "UPDATE", "durable_runs") == 1


def test_a_resume_reads_the_checkpoints_with_one_query(
    traced: tuple[Engine, list[str]],
) -> None:
    engine, statements = traced
    crashing = _chain("resumed", 12, crash_at=7)
    durable = DurableEngine(engine, workflows=[crashing])
    run_id = durable.start(crashing)
    with pytest.raises(KeyboardInterrupt):
        durable.run(run_id)
    statements.clear()
    fixed = DurableEngine(engine, workflows=[_chain("resumed", 12)])
    assert fixed.run(run_id, force=True) == 11
    assert _count(statements, "SELECT", "FROM durable_steps") == 1
    assert _count(statements, "INSERT", "durable_steps") == 5  # s7..s11 only
