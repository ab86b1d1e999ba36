"""Where facts live between ``reclaim collect`` and ``reclaim recommend``: the database.

``collect_into`` finds and hashes the input files first. If a stored collection was made from
exactly those contents (same hashes, same window), it *is* the answer: nothing is read and
nothing is added, so loading the same files twice adds nothing. Otherwise the files are read,
the facts table is stored as Parquet chunks in ``fact_chunks``, and each new file is entered in
the ``ingest_files`` ledger. ``load_facts`` returns the newest (or a chosen) collection as the
same Polars DataFrame ``collect_facts`` returns in memory.

A collection replaces, never adds to, the one before: a FOCUS export folder holds the whole
billing history the provider restates, so the facts come from all the files given each time.
"""

from __future__ import annotations

__all__ = [
    "FACTS_VERSION",
    "ImportedFile",
    "StoredCollection",
    "collect_into",
    "imported_files",
    "input_digest",
    "latest_collection",
    "list_collections",
    "load_facts",
    "save_collection",
]

import hashlib
import io
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from reclaim.errors import ConfigError
from reclaim.ingest.collector import Collection, Progress, collect_files
from reclaim.ingest.facts import read_facts_parquet, validate_facts, write_facts_parquet
from reclaim.ingest.files import discover, fingerprint
from reclaim.ingest.focus import BILLING_FORMATS
from reclaim.ingest.inventory import INVENTORY_FORMATS
from reclaim.ingest.report import CollectReport
from reclaim.ingest.utilization import UTILIZATION_FORMATS
from reclaim.store.tables.ingest import fact_chunks, fact_collections, ingest_files

FACTS_VERSION: Final = 2
"""Bumped when a stored facts table would no longer mean what ``FACT_SCHEMA`` says."""

CHUNK_ROWS: Final = 200_000
_SAMPLES_IN_SUMMARY: Final = 20


@dataclass(frozen=True)
class StoredCollection:
    id: int
    input_digest: str
    source: str
    created_at: datetime
    as_of: datetime | None
    resources: int
    rows_read: int
    bad_rows: int
    summary: dict[str, Any]
    reported_at: datetime | None = None
    """When ``collect`` last answered with this collection; the latest is the default one."""
    new: bool = True
    """False when an identical earlier collection was returned instead of adding one."""


def input_digest(
    hashes: Iterable[tuple[str, str]],
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
) -> str:
    """A digest of (kind, sha256) pairs and the window: equal inputs give equal facts."""
    digest = hashlib.sha256(f"facts-v{FACTS_VERSION};window={window_days}".encode())
    if as_of is not None:
        digest.update(f";as_of={as_of.astimezone(UTC).isoformat()}".encode())
    for kind, sha in sorted(set(hashes)):
        digest.update(f";{kind}:{sha}".encode())
    return digest.hexdigest()


def collect_into(
    engine: Engine,
    billing: Iterable[Path | str] = (),
    inventory: Iterable[Path | str] = (),
    utilization: Iterable[Path | str] = (),
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
    progress: Progress | None = None,
) -> tuple[StoredCollection, CollectReport | None]:
    """Collect files into the database; the report is None when nothing new was read."""
    groups = {
        "billing": discover(billing, BILLING_FORMATS),
        "inventory": discover(inventory, INVENTORY_FORMATS),
        "utilization": discover(utilization, UTILIZATION_FORMATS),
    }
    if not any(groups.values()):
        raise ConfigError("no input files", fix="give --billing, --inventory or --utilization")
    if progress:
        progress(f"hashing {sum(len(files) for files in groups.values())} file(s)")
    prints = fingerprint(file for files in groups.values() for file in files)
    hashes = prints.hashes
    digest = input_digest(
        ((kind, hashes[file.path]) for kind, files in groups.items() for file in files),
        as_of=as_of,
        window_days=window_days,
    )
    existing = _by_digest(engine, digest)
    if existing is not None:
        _mark_reported(engine, existing.id)
        return existing, None
    collection = collect_files(
        groups["billing"],
        groups["inventory"],
        groups["utilization"],
        hashes=hashes,
        as_of=as_of,
        window_days=window_days,
        progress=progress,
        fingerprints=prints,
    )
    if progress:
        progress(f"storing {collection.facts.height:,} resources")
    stored = save_collection(engine, collection, digest=digest, source="files")
    return stored, collection.report


def save_collection(
    engine: Engine, collection: Collection, *, digest: str | None = None, source: str = "files"
) -> StoredCollection:
    """Store a facts table and enter its new input files in the ledger (idempotent by digest)."""
    validate_facts(collection.facts)
    chunks = _chunks(collection.facts)
    if digest is None:
        digest = hashlib.sha256(b"".join(chunks)).hexdigest()
    report = collection.report
    summary = _summary(report)
    now = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            found = _select_by_digest(connection, digest)
            if found is not None:
                return found
            collection_id = connection.execute(
                fact_collections.insert()
                .values(
                    input_digest=digest,
                    source=source,
                    created_at=now,
                    as_of=report.as_of,
                    facts_version=FACTS_VERSION,
                    resources=collection.facts.height,
                    rows_read=report.rows,
                    bad_rows=report.bad_rows,
                    summary=summary,
                    reported_at=now,
                )
                .returning(fact_collections.c.id)
            ).scalar_one()
            connection.execute(
                fact_chunks.insert(),
                [
                    {
                        "collection_id": collection_id,
                        "seq": seq,
                        "rows": rows,
                        "parquet": blob,
                    }
                    for seq, (rows, blob) in enumerate(
                        zip(_chunk_rows(collection.facts), chunks, strict=True)
                    )
                ],
            )
            _enter_files(connection, report, collection_id, now)
    except IntegrityError:
        # Another process stored the same inputs between our check and our insert.
        again = _by_digest(engine, digest)
        if again is None:
            raise
        _mark_reported(engine, again.id)
        return again
    stored = _by_digest(engine, digest)
    assert stored is not None
    return StoredCollection(**{**stored.__dict__, "new": True})


def _mark_reported(engine: Engine, collection_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            fact_collections.update()
            .where(fact_collections.c.id == collection_id)
            .values(reported_at=datetime.now(UTC))
        )


def _newest_first() -> tuple[sa.ColumnElement[Any], ...]:
    """The collection last reported by ``collect`` first (then the last created)."""
    return (
        fact_collections.c.reported_at.desc().nulls_last(),
        fact_collections.c.id.desc(),
    )


def _enter_files(
    connection: sa.Connection, report: CollectReport, collection_id: int, now: datetime
) -> None:
    files = [f for f in report.files if f.duplicate_of is None]
    if not files:
        return
    known = set(
        connection.execute(
            sa.select(ingest_files.c.sha256).where(
                ingest_files.c.sha256.in_([f.sha256 for f in files])
            )
        ).scalars()
    )
    fresh = {f.sha256: f for f in files if f.sha256 not in known}
    if fresh:
        # Two collections sharing a new file may commit at once: the first one enters it.
        insert = (
            postgresql.insert(ingest_files)
            if connection.dialect.name == "postgresql"
            else sqlite.insert(ingest_files)
        ).on_conflict_do_nothing(index_elements=["sha256"])
        connection.execute(
            insert,
            [
                {
                    "sha256": f.sha256,
                    "kind": f.kind,
                    "path": f.path,
                    "size_bytes": _size(f.path),
                    "rows": f.rows,
                    "bad_rows": f.bad_rows,
                    "collection_id": collection_id,
                    "imported_at": now,
                }
                for f in fresh.values()
            ],
        )


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _chunk_rows(facts: pl.DataFrame) -> list[int]:
    if facts.height == 0:
        return [0]
    return [min(CHUNK_ROWS, facts.height - start) for start in range(0, facts.height, CHUNK_ROWS)]


def _chunks(facts: pl.DataFrame) -> list[bytes]:
    blobs: list[bytes] = []
    for offset, rows in zip(
        range(0, max(facts.height, 1), CHUNK_ROWS), _chunk_rows(facts), strict=True
    ):
        buffer = io.BytesIO()
        write_facts_parquet(facts.slice(offset, rows), buffer)
        blobs.append(buffer.getvalue())
    return blobs


def _summary(report: CollectReport) -> dict[str, Any]:
    return {
        "sources": report.sources,
        "unattributed_cost": report.unattributed_cost,
        "warnings": report.warnings,
        "files": [
            {
                "path": f.path,
                "kind": f.kind,
                "sha256": f.sha256,
                "rows": f.rows,
                "bad_rows": f.bad_rows,
                "warnings": f.warnings,
                "duplicate_of": f.duplicate_of,
                "superseded": f.superseded,
                "superseded_by": f.superseded_by,
            }
            for f in report.files
        ],
        "bad_row_samples": [
            {"path": s.path, "row": s.row, "reason": s.reason, "dropped": s.dropped}
            for s in report.samples()[:_SAMPLES_IN_SUMMARY]
        ],
    }


def _row_to_stored(row: sa.Row[Any], *, new: bool) -> StoredCollection:
    return StoredCollection(
        id=int(row.id),
        input_digest=row.input_digest,
        source=row.source,
        created_at=row.created_at,
        as_of=row.as_of,
        resources=int(row.resources),
        rows_read=int(row.rows_read),
        bad_rows=int(row.bad_rows),
        summary=dict(row.summary),
        reported_at=row.reported_at,
        new=new,
    )


def _select_by_digest(connection: sa.Connection, digest: str) -> StoredCollection | None:
    row = connection.execute(
        sa.select(fact_collections).where(fact_collections.c.input_digest == digest)
    ).first()
    return None if row is None else _row_to_stored(row, new=False)


def _by_digest(engine: Engine, digest: str) -> StoredCollection | None:
    with engine.connect() as connection:
        return _select_by_digest(connection, digest)


def latest_collection(engine: Engine) -> StoredCollection | None:
    """The collection ``collect`` reported last (created or found again), or None before the
    first ``reclaim collect``: the facts ``reclaim recommend`` reads by default."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(fact_collections).order_by(*_newest_first()).limit(1)
        ).first()
    return None if row is None else _row_to_stored(row, new=False)


def list_collections(engine: Engine, *, limit: int | None = 20) -> list[StoredCollection]:
    """Stored collections, the last created first."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(fact_collections).order_by(fact_collections.c.id.desc()).limit(limit)
        ).all()
    return [_row_to_stored(row, new=False) for row in rows]


def load_facts(
    engine: Engine, collection_id: int | None = None, *, columns: AbstractSet[str] | None = None
) -> pl.DataFrame:
    """The facts table of a stored collection, as collected; by default the one ``collect``
    reported last (collecting A, B, then A again makes A the default again). With
    ``columns``, only those fact columns are read (a rule pack reads 46 of the 72).

    Raises ``ConfigError`` when there is none yet, or when it was stored by a version of
    reclaim whose facts mean something else.
    """
    with engine.connect() as connection:
        query = sa.select(fact_collections.c.id, fact_collections.c.facts_version)
        if collection_id is None:
            query = query.order_by(*_newest_first()).limit(1)
        else:
            query = query.where(fact_collections.c.id == collection_id)
        head = connection.execute(query).first()
        if head is None:
            what = (
                "no facts collected yet"
                if collection_id is None
                else (f"no fact collection {collection_id}")
            )
            raise ConfigError(what, fix="run `reclaim collect files …` or `reclaim collect aws`")
        if head.facts_version != FACTS_VERSION:
            raise ConfigError(
                f"fact collection {head.id} was stored as facts version {head.facts_version}, "
                f"this reclaim reads version {FACTS_VERSION}",
                fix="run `reclaim collect` again",
            )
        blobs = connection.execute(
            sa.select(fact_chunks.c.parquet)
            .where(fact_chunks.c.collection_id == head.id)
            .order_by(fact_chunks.c.seq)
        ).scalars()
        frames = [read_facts_parquet(io.BytesIO(blob), columns) for blob in blobs]
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


@dataclass(frozen=True)
class ImportedFile:
    sha256: str
    kind: str
    path: str
    size_bytes: int
    rows: int
    bad_rows: int
    collection_id: int | None
    imported_at: datetime


def imported_files(engine: Engine) -> list[ImportedFile]:
    """The ledger: every distinct file content ever collected, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(ingest_files).order_by(ingest_files.c.id)).all()
    return [
        ImportedFile(
            sha256=row.sha256,
            kind=row.kind,
            path=row.path,
            size_bytes=int(row.size_bytes),
            rows=int(row.rows),
            bad_rows=int(row.bad_rows),
            collection_id=row.collection_id,
            imported_at=row.imported_at,
        )
        for row in rows
    ]
