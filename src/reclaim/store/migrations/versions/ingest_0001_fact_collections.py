"""Fact collections, their Parquet chunks, and the ledger of ingested files.

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ingest_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ingest",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fact_collections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("as_of", _TIME),
        sa.Column("facts_version", sa.Integer(), nullable=False),
        sa.Column("resources", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fact_collections"),
        sa.UniqueConstraint("input_digest", name="uq_fact_collections_input_digest"),
    )
    op.create_table(
        "fact_chunks",
        sa.Column("collection_id", _ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("parquet", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["fact_collections.id"],
            name="fk_fact_chunks_collection_id_fact_collections",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "seq", name="pk_fact_chunks"),
    )
    op.create_table(
        "ingest_files",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bad_rows", sa.BigInteger(), nullable=False),
        sa.Column("collection_id", _ID),
        sa.Column("imported_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["fact_collections.id"],
            name="fk_ingest_files_collection_id_fact_collections",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_files"),
        sa.UniqueConstraint("sha256", name="uq_ingest_files_sha256"),
    )
    op.create_index("ix_ingest_files_collection_id", "ingest_files", ["collection_id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_files_collection_id", table_name="ingest_files")
    op.drop_table("ingest_files")
    op.drop_table("fact_chunks")
    op.drop_table("fact_collections")
