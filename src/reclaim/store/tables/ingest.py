"""Tables of the ingest component: fact collections, their data, and the ledger of input files.

A *collection* is one run of ``reclaim collect``: the per-resource facts table it produced is
stored as Parquet in ``fact_chunks`` (a few hundred thousand rows per chunk), so facts keep
their exact Polars types, a million resources load in a second, and every worker that can reach
the database (not just the machine that collected) can read them. ``ingest_files`` is the ledger
of input files by content hash: a collection whose inputs (the set of hashes) match an earlier
one is that collection, and nothing is added.
"""

from __future__ import annotations

__all__ = ["fact_chunks", "fact_collections", "ingest_files"]

from typing import Final

import sqlalchemy as sa

from reclaim.database import UtcDateTime
from reclaim.store.schema import metadata

# SQLite has no BIGINT rowid alias: only "INTEGER PRIMARY KEY" autoincrements there.
_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


fact_collections = sa.Table(
    "fact_collections",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("input_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("as_of", UtcDateTime()),
    sa.Column("facts_version", sa.Integer(), nullable=False),
    sa.Column("resources", sa.Integer(), nullable=False),
    sa.Column("rows_read", sa.BigInteger(), nullable=False),
    sa.Column("bad_rows", sa.BigInteger(), nullable=False),
    sa.Column("summary", sa.JSON(), nullable=False),
    # When `collect` last answered with this collection (created, or found again by digest):
    # the default collection is the one last reported, not the one last created.
    sa.Column("reported_at", UtcDateTime()),
    sa.Index("ix_fact_collections_reported_at", "reported_at", "id"),
)

fact_chunks = sa.Table(
    "fact_chunks",
    metadata,
    sa.Column(
        "collection_id",
        _ID,
        sa.ForeignKey("fact_collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer(), primary_key=True),
    sa.Column("rows", sa.Integer(), nullable=False),
    sa.Column("parquet", sa.LargeBinary(), nullable=False),
)

ingest_files = sa.Table(
    "ingest_files",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("bad_rows", sa.BigInteger(), nullable=False),
    sa.Column(
        "collection_id",
        _ID,
        sa.ForeignKey("fact_collections.id", ondelete="SET NULL"),
    ),
    sa.Column("imported_at", UtcDateTime(), nullable=False),
    sa.Index("ix_ingest_files_collection_id", "collection_id"),
)
