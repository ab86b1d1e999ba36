"""Migrations bring any database to the newest schema, and agree with the declared tables."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.store import all_metadata, migration_status, schema_drift, upgrade


def test_fresh_database_has_every_migration_pending(engine: Engine) -> None:
    status = migration_status(engine)
    assert status.current == ()
    assert not status.up_to_date
    assert {rev.id for rev in status.pending} >= set(status.heads)


def test_upgrade_reaches_every_head_and_is_repeatable(engine: Engine) -> None:
    first = upgrade(engine)
    assert first.up_to_date
    assert first.current == first.heads
    second = upgrade(engine)
    assert second == first


def test_migrated_schema_matches_declared_tables(engine: Engine) -> None:
    upgrade(engine)
    assert schema_drift(engine) == []
    declared = {name for metadata in all_metadata() for name in metadata.tables}
    present = set(sa.inspect(engine).get_table_names())
    assert declared <= present


def test_drift_is_detected_when_a_table_is_missing(engine: Engine) -> None:
    extra = sa.MetaData()
    sa.Table("only_declared", extra, sa.Column("id", sa.Integer, primary_key=True))
    upgrade(engine)
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), extra)
    assert any(diff[0] == "add_table" and diff[1].name == "only_declared" for diff in diffs)


def test_the_fingerprint_constraint_becomes_a_unique_index_and_keeps_every_row(
    engine: Engine,
) -> None:
    # recommend_0003: on SQLite a UNIQUE constraint's index cannot be dropped, so a first run
    # could not build it after its rows; the table is rebuilt (ids and all) with a unique
    # index of the same name instead, and on PostgreSQL the constraint is swapped for one.
    upgrade(engine, "recommend@recommend_0002")
    row = {
        "rule_id": "idle-vm",
        "resource_id": "i-1",
        "status": "open",
        "monthly_savings": 12.5,
        "params": '{"type": "stop"}',
        "first_seen": "2026-12-01 00:00:00",
        "last_seen": "2026-12-01 00:00:00",
        "times_seen": 1,
        "status_changed_at": "2026-12-01 00:00:00",
        "version": 1,
    }
    columns = ", ".join(["id", "fingerprint", *row])
    values = ", ".join([":id", ":fingerprint", *(f":{name}" for name in row)])
    insert = sa.text(f"INSERT INTO recommendations ({columns}) VALUES ({values})")
    with engine.begin() as connection:
        connection.execute(insert, [{**row, "id": 7, "fingerprint": "a"}])
        connection.execute(insert, [{**row, "id": 9, "fingerprint": "b"}])
    upgrade(engine)
    assert schema_drift(engine) == []
    inspector = sa.inspect(engine)
    assert inspector.get_unique_constraints("recommendations") == []
    unique = [i for i in inspector.get_indexes("recommendations") if i["unique"]]
    assert [(i["name"], i["column_names"]) for i in unique] == [
        ("uq_recommendations_fingerprint", ["fingerprint"])
    ]
    with engine.connect() as connection:
        kept = connection.execute(
            sa.text("SELECT id, fingerprint, monthly_savings FROM recommendations ORDER BY id")
        ).all()
    assert [(id_, fp, float(saving)) for id_, fp, saving in kept] == [
        (7, "a", 12.5),
        (9, "b", 12.5),
    ]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(insert, [{**row, "id": 10, "fingerprint": "a"}])
