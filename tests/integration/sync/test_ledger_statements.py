"""The ledger's two commits of a chunk: what they record, and what they cost in statements."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from reclaim.database import Backend, backend_of
from reclaim.store import upgrade
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.sync import TicketLedger
from reclaim.sync import ledger as ledger_module

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHUNK = 50


@contextmanager
def executions(engine: Engine) -> Iterator[list[int]]:
    """Statement executions sent to the server: an executemany counts once per row."""
    sent: list[int] = []

    def count(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        # A multi-row INSERT comes as one set of many parameters: one statement.
        rows_sent = many and isinstance(parameters, list | tuple) and parameters
        sent.append(len(parameters) if rows_sent and not isinstance(parameters[0], str) else 1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def rows(start: int, count: int) -> list[tuple[str, int | None, str, str, str]]:
    return [
        (f"fp{n:04d}", 1000 + n, f"OPS-{n}", str(10_000 + n), f"https://jira/browse/OPS-{n}")
        for n in range(start, start + count)
    ]


def test_a_chunk_is_recorded_whole_with_its_links(engine: Engine) -> None:
    upgrade(engine)
    ledger = TicketLedger(engine)
    chunk = rows(0, CHUNK)
    assert ledger.claim_intents([(fp, "OPS") for fp, *_ in chunk], NOW) == {fp for fp, *_ in chunk}
    marked: list[list[int]] = []
    ledger.record_created(chunk, NOW, also=lambda _c, ids: marked.append(ids))
    # Run again over an overlapping chunk (a chunk retried after a lost lease): the links
    # recorded first stay, the rest are added.
    again = rows(CHUNK - 5, 10)
    ledger.claim_intents([(fp, "OPS") for fp, *_ in again], NOW)
    ledger.record_created(again, NOW)

    found = ledger.get_many([fp for fp, *_ in chunk + again])
    assert len(found) == CHUNK + 5
    for fp, _, key, issue_id, url in chunk + again:
        row = found[fp]
        assert (row.state, row.key, row.issue_id, row.url) == ("created", key, issue_id, url)
    with engine.connect() as connection:
        links = dict(
            connection.execute(
                sa.select(recommendation_tickets.c.recommendation_id, tickets.c.fingerprint).join(
                    tickets, tickets.c.id == recommendation_tickets.c.ticket_id
                )
            ).all()
        )
    assert links == {rid: fp for fp, rid, *_ in chunk + again}
    assert marked == [[rid for _, rid, *_ in chunk]]


def test_a_chunk_costs_a_handful_of_statements_on_postgresql_not_one_per_ticket(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(engine)
    ledger = TicketLedger(engine)
    chunk = rows(0, CHUNK)
    # On PostgreSQL the ledger sends its statements on psycopg's cursor: counted there, and
    # the pipelines that put several of them in one round trip.
    driver: list[str] = []
    pipelines: list[int] = []
    if backend_of(engine) is Backend.POSTGRESQL:
        import psycopg

        execute = psycopg.Cursor.execute
        pipeline = psycopg.Connection.pipeline

        def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            driver.append(str(query))
            return execute(self, query, *args, **kwargs)

        def counted_pipeline(self: Any) -> Any:
            pipelines.append(len(driver))
            return pipeline(self)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
        monkeypatch.setattr(psycopg.Connection, "pipeline", counted_pipeline)
    with executions(engine) as sent:
        ledger.claim_intents([(fp, "OPS") for fp, *_ in chunk], NOW)
        ledger.record_created(chunk, NOW)
    if backend_of(engine) is Backend.POSTGRESQL:
        # The intents; then custom plans for the transaction, the rows locked in order, and
        # their keys and links together: each one statement whatever the chunk's size (CPU
        # of workers and server alike; every round trip costs both). The last three are sent
        # in one pipeline: one round trip.
        assert sum(sent) + len(driver) == 4
        assert pipelines == [1]
    else:
        # SQLite runs in-process: a statement per ticket costs no round trip there.
        assert sum(sent) <= 2 * CHUNK + 3


def test_a_chunk_is_recorded_with_plans_made_for_the_table_as_it_is(engine: Engine) -> None:
    """A generic plan kept from when ``tickets`` was nearly empty scans the whole table for
    every ticket later on (see ledger._CUSTOM_PLANS): the recording transaction plans each
    statement, and each foreign key check, for the table as it is."""
    upgrade(engine)
    ledger = TicketLedger(engine)
    chunk = rows(0, 5)
    ledger.claim_intents([(fp, "OPS") for fp, *_ in chunk], NOW)
    modes: list[str] = []

    def show(connection: sa.Connection, _ids: list[int]) -> None:
        if backend_of(engine) is Backend.POSTGRESQL:
            modes.append(connection.execute(sa.text("SHOW plan_cache_mode")).scalar_one())
            modes.append(connection.execute(sa.text("SHOW enable_seqscan")).scalar_one())

    ledger.record_created(chunk, NOW, also=show)
    if backend_of(engine) is Backend.POSTGRESQL:
        assert modes == ["force_custom_plan", "off"]
        with engine.connect() as connection:
            # Local to that transaction: the pooled connection is back to the default.
            assert connection.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == "auto"
            assert connection.execute(sa.text("SHOW enable_seqscan")).scalar_one() == "on"


def test_a_chunk_finds_its_rows_by_index_in_a_table_never_analyzed(engine: Engine) -> None:
    """Before the first ANALYZE the planner takes ``tickets`` for a few hundred rows: with
    sequential scans allowed, locking a chunk's rows and recording their keys read the whole
    table for every chunk, each chunk longer than the last. The recording transaction reaches
    them through the fingerprint index however many rows there are."""
    if backend_of(engine) is not Backend.POSTGRESQL:
        pytest.skip("plans are PostgreSQL's")
    upgrade(engine)
    ledger = TicketLedger(engine)
    earlier = rows(0, 3000)
    ledger.claim_intents([(fp, "OPS") for fp, *_ in earlier], NOW)
    chunk = rows(3000, CHUNK)
    ledger.claim_intents([(fp, "OPS") for fp, *_ in chunk], NOW)
    plans: list[str] = []

    def explain(connection: sa.Connection, _ids: list[int]) -> None:
        # The ledger's own statements, planned (not run) in its transaction.
        parameters = {
            "fingerprints": json.dumps([fp for fp, *_ in chunk]),
            "rows": "[]",
            "now": NOW,
        }
        with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            for statement in (ledger_module._LOCK_TICKETS, ledger_module._RECORD_CREATED):
                cursor.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))

    ledger.record_created(chunk, NOW, also=explain)
    assert len(plans) == 2
    for plan in plans:
        assert "Seq Scan on tickets" not in plan, plan
