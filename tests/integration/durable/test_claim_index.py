"""The item claim reads the partial index on unfinished rows, on both backends.

Without it a claim walks past every finished item of the step in key order, so claiming gets
slower as a map step progresses. The query repeats the index predicate as literal SQL; this
test fails if the planner can no longer match it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from reclaim.durable import ensure_schema
from reclaim.durable.queue import ItemQueue
from reclaim.durable.schema import runs, steps
from reclaim.durable.store import Store


def test_claim_uses_the_claimable_index(engine: Engine) -> None:
    ensure_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            runs.insert(),
            [
                {
                    "id": "r1",
                    "workflow": "w",
                    "version": "1",
                    "fingerprint": "f",
                    "definition": "{}",
                    "status": "running",
                    "input": "null",
                    "attempts": 1,
                    "max_attempts": 3,
                    "fencing_token": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        connection.execute(
            steps.insert(),
            [
                {
                    "run_id": "r1",
                    "step": "each",
                    "item_key": f"{i:05d}",
                    "status": "succeeded" if i < 900 else "pending",
                    "attempts": 1,
                    "fencing_token": 1,
                }
                for i in range(1000)
            ],
        )
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The claim is one UPDATE … FROM (SELECT … SKIP LOCKED) … RETURNING statement.
        if statement.lstrip().upper().startswith("UPDATE DURABLE_STEPS"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        claims = ItemQueue(Store(engine)).claim("w1", 30, limit=2, run_id="r1", step="each")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [c.item_key for c in claims] == ["00900", "00901"]
    statement, parameters = captured[0]
    with engine.begin() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", parameters)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "ix_durable_steps_claimable" in plan, plan
