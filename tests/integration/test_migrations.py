"""Migrations bring any database to the newest schema, and agree with the declared tables."""

from __future__ import annotations

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
