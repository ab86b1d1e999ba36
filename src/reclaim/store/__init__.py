"""The application's database: its schema, its migrations, and the engine it runs on."""

from reclaim.database import (
    DATABASE_URL_ENV,
    Backend,
    backend_of,
    check_connection,
    create_engine,
    default_database_url,
    redact_url,
    resolve_database_url,
)
from reclaim.store.migration import (
    MigrationStatus,
    Revision,
    migration_status,
    schema_drift,
    upgrade,
)
from reclaim.store.schema import all_metadata, metadata

__all__ = [
    "DATABASE_URL_ENV",
    "Backend",
    "MigrationStatus",
    "Revision",
    "all_metadata",
    "backend_of",
    "check_connection",
    "create_engine",
    "default_database_url",
    "metadata",
    "migration_status",
    "redact_url",
    "resolve_database_url",
    "schema_drift",
    "upgrade",
]
