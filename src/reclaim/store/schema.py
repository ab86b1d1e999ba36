"""The application's tables, declared once with SQLAlchemy Core.

Alembic migrations in ``store/migrations`` build these tables; a test checks on SQLite and on
PostgreSQL that a database brought to the newest revision matches the declarations here exactly.
Components that own tables of their own (the durable engine, for one) declare them in their own
``MetaData``; ``all_metadata`` gathers every one of them for that check.
"""

from __future__ import annotations

__all__ = ["all_metadata", "metadata"]

import sqlalchemy as sa

from reclaim.database import NAMING_CONVENTION

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def all_metadata() -> list[sa.MetaData]:
    """Every table that ``reclaim db upgrade`` creates, across all components."""
    import reclaim.durable.schedule  # declares durable_schedules on the durable metadata
    import reclaim.store.tables.infra  # declares its tables on ``metadata``
    import reclaim.store.tables.ingest
    import reclaim.store.tables.recommend
    import reclaim.store.tables.service
    import reclaim.store.tables.sync  # noqa: F401  (declares its tables on ``metadata``)
    from reclaim.durable.schema import metadata as durable_metadata

    return [metadata, durable_metadata]
