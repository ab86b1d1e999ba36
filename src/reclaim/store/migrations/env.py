"""Alembic's entry point; reclaim passes in an open connection, never a URL."""

from __future__ import annotations

from alembic import context

from reclaim.store.schema import all_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `reclaim db upgrade`, which supplies a connection")

context.configure(
    connection=connection,
    target_metadata=all_metadata(),
    compare_type=True,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
