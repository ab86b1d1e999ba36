"""Files in, facts out: the in-memory collection path, no database needed.

``collect_facts`` reads billing, inventory and utilization files and returns the facts table
(one row per resource, ``FACT_SCHEMA``) with the report of what was read. ``build_facts`` joins
already-read parts; the AWS collector uses it with what it fetched from the APIs.
"""

from __future__ import annotations

__all__ = ["Collection", "build_facts", "collect_facts", "collect_files"]

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import polars as pl

from reclaim.errors import ConfigError, ExecutionError, SourceLocation
from reclaim.ingest.facts import KINDS, conform_facts, validate_facts
from reclaim.ingest.files import Fingerprints, InputFile, discover, fingerprint, verify_unchanged
from reclaim.ingest.focus import BILLING_FORMATS, BillingData, read_billing
from reclaim.ingest.inventory import INVENTORY_FORMATS, InventoryData, read_inventory
from reclaim.ingest.kinds import kind_expr
from reclaim.ingest.report import CollectReport
from reclaim.ingest.sizes import instance_type_columns
from reclaim.ingest.tags import decode_tags
from reclaim.ingest.utilization import (
    UTILIZATION_FORMATS,
    UtilizationData,
    aggregate_utilization,
    read_and_aggregate,
    read_utilization,
)

Progress = Callable[[str], None]

# Facts the bill and the inventory both may know; the inventory (the resource's own current
# description) wins for names, types and tags, the bill wins for where the money is booked.
_PREFER_INVENTORY = ("resource_name", "resource_type", "tags_json")
_PREFER_BILL = ("account_id", "region", "provider")


@dataclass
class Collection:
    """A facts table and the account of how it was made."""

    facts: pl.DataFrame
    report: CollectReport


def collect_facts(
    billing: Iterable[Path | str] = (),
    inventory: Iterable[Path | str] = (),
    utilization: Iterable[Path | str] = (),
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
    progress: Progress | None = None,
) -> Collection:
    """Read files (or folders of them) into the per-resource facts table.

    ``as_of`` (default: the end of the billing data, else the newest metric sample) is where the
    30-day cost window and the utilization window end and what ages are measured from.
    Raises ``ConfigError`` for an unreadable file or one lacking a required column; bad rows
    inside a file are skipped and listed in ``Collection.report``.
    """
    billing_files = discover(billing, BILLING_FORMATS)
    inventory_files = discover(inventory, INVENTORY_FORMATS)
    utilization_files = discover(utilization, UTILIZATION_FORMATS)
    every = [*billing_files, *inventory_files, *utilization_files]
    if progress:
        progress(f"hashing {len(every)} file(s)")
    prints = fingerprint(every)
    return collect_files(
        billing_files,
        inventory_files,
        utilization_files,
        hashes=prints.hashes,
        fingerprints=prints,
        as_of=as_of,
        window_days=window_days,
        progress=progress,
    )


def collect_files(
    billing_files: Sequence[InputFile],
    inventory_files: Sequence[InputFile],
    utilization_files: Sequence[InputFile],
    *,
    hashes: dict[Path, str],
    as_of: datetime | None = None,
    window_days: int = 30,
    progress: Progress | None = None,
    fingerprints: Fingerprints | None = None,
) -> Collection:
    """``collect_facts`` for files already found and hashed (the ledger hashes them first).

    With ``fingerprints`` (from ``fingerprint``), a file that changed while it was read raises
    ``ExecutionError``: the hashes would no longer name the bytes the facts were made of.
    """
    try:
        bill = read_billing(billing_files, as_of=as_of, hashes=hashes, progress=progress)
        # Utilization is aggregated before the inventory is read: the inventory's table is not
        # held while the samples are (at a million resources, the collection's peak).
        end = as_of or bill.as_of
        if end is not None and utilization_files:
            if progress:
                progress(f"reading and aggregating {len(utilization_files)} utilization file(s)")
            # The window is known: each file is checked and aggregated in one read.
            util, usage_part = read_and_aggregate(
                utilization_files, end, window_days=window_days, hashes=hashes
            )
            usage = [(end, usage_part)]
            # Only ``usage`` may hold the table: ``_build_facts`` frees it once placed.
            del usage_part
        else:
            if progress and utilization_files:
                progress(f"reading {len(utilization_files)} utilization file(s)")
            util = read_utilization(utilization_files, hashes=hashes)
            usage = [
                _utilization_part(
                    bill, util, as_of=as_of, window_days=window_days, progress=progress
                )
            ]
    except pl.exceptions.PolarsError as exc:
        _unreadable(exc, fingerprints)
    try:
        if progress and inventory_files:
            progress(f"reading {len(inventory_files)} inventory file(s)")
        inv = read_inventory(inventory_files, hashes=hashes)
    except pl.exceptions.PolarsError as exc:
        _unreadable(exc, fingerprints)
    sources = [
        name
        for name, files in (
            ("billing", billing_files),
            ("inventory", inventory_files),
            ("utilization", utilization_files),
        )
        if files
    ]
    collection = _build_facts(
        bill,
        inv,
        util,
        as_of=as_of,
        window_days=window_days,
        sources=sources,
        progress=progress,
        consume=True,
        usage=usage,
    )
    _refuse_all_bad(collection.report)
    if fingerprints is not None:
        verify_unchanged(fingerprints)
    return collection


def _unreadable(exc: pl.exceptions.PolarsError, fingerprints: Fingerprints | None) -> NoReturn:
    # Files are read lazily, long after they were first opened: a file rewritten in place
    # meanwhile breaks the reader itself. Say which file, not the reader's error.
    if fingerprints is not None:
        verify_unchanged(fingerprints)
    raise ExecutionError(
        f"cannot read the input files: {(str(exc).strip().splitlines() or ['?'])[0]}",
        fix="check that the files are complete exports, then collect again",
    ) from exc


def _utilization_part(
    billing: BillingData | None,
    utilization: UtilizationData | None,
    *,
    as_of: datetime | None,
    window_days: int,
    progress: Progress | None,
) -> tuple[datetime, pl.DataFrame | None]:
    """Where the windows end, and the utilization per resource (None without samples).

    The end is ``as_of``, else the end of the billing data, else the newest sample, else now.
    """
    end = as_of or (billing.as_of if billing is not None else None)
    samples = utilization.size() if utilization is not None else 0
    if end is None and utilization is not None and samples:
        end = utilization.newest()
    if end is None:
        end = datetime.now().astimezone()
    if utilization is None or not samples:
        return end, None
    if progress:
        progress(f"aggregating {samples:,} utilization samples per resource")
    return end, aggregate_utilization(
        utilization.samples,
        end,
        window_days=window_days,
        count=utilization.count,
        pieces=utilization.pieces,
    )


def _refuse_all_bad(report: CollectReport) -> None:
    """A file none of whose rows could be read is a wrong file, not a file with bad rows."""
    for item in report.files:
        if item.rows and item.bad_rows >= item.rows:
            first = next((s for s in item.samples if s.dropped), None)
            example = f" (row {first.row}: {first.reason})" if first else ""
            raise ConfigError(
                f"every row of this {item.kind} file is bad{example}; nothing was stored",
                location=SourceLocation(item.path),
                fix="check that it is the right file, in its format, encoded as UTF-8",
            )


def build_facts(
    billing: BillingData | None,
    inventory: InventoryData | None,
    utilization: UtilizationData | None,
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
    sources: Sequence[str] = (),
    progress: Progress | None = None,
) -> Collection:
    """Join per-resource billing, inventory and utilization into the facts table."""
    return _build_facts(
        billing,
        inventory,
        utilization,
        as_of=as_of,
        window_days=window_days,
        sources=sources,
        progress=progress,
        consume=False,
    )


def _build_facts(
    billing: BillingData | None,
    inventory: InventoryData | None,
    utilization: UtilizationData | None,
    *,
    as_of: datetime | None,
    window_days: int,
    sources: Sequence[str],
    progress: Progress | None,
    consume: bool,
    usage: list[tuple[datetime, pl.DataFrame | None]] | None = None,
) -> Collection:
    """``build_facts``; with ``consume``, each part's per-resource table is taken out of its
    ``…Data`` (left empty) once placed, so that it is freed while the facts are put together:
    at a million resources the bill's and the inventory's tables (attributes, tag text) held
    beside the facts made most of the collection's peak. ``usage`` holds what
    ``_utilization_part`` returned, when the caller aggregated the utilization already; it is
    emptied, so that the caller does not keep the table alive while the facts are made."""
    report = CollectReport(sources=list(sources))
    for source in (billing, inventory, utilization):
        if source is not None:
            report.files.extend(source.files)
    if billing is not None:
        report.unattributed_cost = billing.unattributed_cost
    if usage:
        end, usage_part = usage.pop()
    else:
        end, usage_part = _utilization_part(
            billing, utilization, as_of=as_of, window_days=window_days, progress=progress
        )
    report.as_of = end

    has_list = billing is not None and billing.per_resource["list_cost_30d"].null_count() == 0
    parts: list[pl.DataFrame] = []
    if billing is not None and billing.per_resource.height:
        parts.append(billing.per_resource.with_columns(pl.lit(True).alias("in_bill")))
        if consume:
            billing.per_resource = billing.per_resource.clear()
    if inventory is not None and inventory.per_resource.height:
        parts.append(
            inventory.per_resource.with_columns(pl.lit(True).alias("in_inventory")).rename(
                {name: f"{name}__inv" for name in (*_PREFER_INVENTORY, *_PREFER_BILL)}
            )
        )
        if consume:
            inventory.per_resource = inventory.per_resource.clear()
    if usage_part is not None:
        parts.append(usage_part)
        del usage_part
    if progress:
        progress("joining billing, inventory and utilization per resource")
    if not parts:
        empty = pl.DataFrame(schema={"resource_id": pl.String, "as_of": pl.Datetime("us", "UTC")})
        return Collection(conform_facts(empty).collect(), report)
    # The list is emptied as the parts are placed: each part is freed once copied.
    joined = _side_by_side(parts)

    present = set(joined.columns)
    merged = joined.with_columns(
        *[_coalesce(present, f"{name}__inv", name).alias(name) for name in _PREFER_INVENTORY],
        *[_coalesce(present, name, f"{name}__inv").alias(name) for name in _PREFER_BILL],
    ).drop(
        f"{name}__inv" for name in (*_PREFER_INVENTORY, *_PREFER_BILL) if f"{name}__inv" in present
    )
    del joined
    tag_text = merged.get_column("tags_json")
    # The tag text of every resource is not needed once decoded: freed before the facts grow.
    merged = merged.drop("tags_json")
    as_of_lit = pl.lit(end).cast(pl.Datetime("us", "UTC"))

    def days_since(column: pl.Expr) -> pl.Expr:
        return (as_of_lit - column).dt.total_seconds() / 86400.0

    # The tags are decoded in a thread of their own while the other facts are computed: each
    # kept about one core busy of two (at a million resources, 2.4 and 2.5 s of CPU in turn).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reclaim-tags") as pool:
        decoding = pool.submit(decode_tags, tag_text)
        del tag_text
        base = conform_facts(merged).collect()
        del merged
        facts = base.with_columns(
            pl.coalesce(
                pl.when(pl.col("kind").is_in(list(KINDS))).then(pl.col("kind")),
                kind_expr(pl.col("resource_type"), pl.col("resource_id")),
            ).alias("kind"),
            *instance_type_columns(pl.col("instance_type")),
            pl.col("cost_30d").fill_null(0.0),
            pl.col("billed_cost_30d").fill_null(0.0),
            pl.col("cost_7d").fill_null(0.0),
            pl.col("list_cost_30d").fill_null(0.0) if has_list else pl.col("list_cost_30d"),
            pl.col("in_bill").fill_null(False),
            pl.col("in_inventory").fill_null(False),
            pl.col("samples").fill_null(0),
            days_since(pl.col("created_at")).alias("age_days"),
            pl.when(pl.col("attached"))
            .then(pl.lit(0.0))
            .otherwise(days_since(pl.coalesce("last_attached_at", "created_at")))
            .alias("days_since_attached"),
            days_since(pl.col("state_changed_at")).alias("days_in_state"),
            as_of_lit.alias("as_of"),
        )
        del base
        decoded, unreadable_tags = decoding.result()
    if unreadable_tags:
        report.sources.append(f"{unreadable_tags} unreadable tag value(s) ignored")
    facts = facts.with_columns(
        decoded["tags"].alias("tags"),
        decoded["tag_count"].alias("tag_count"),
        decoded["owner"].alias("owner"),
    )
    del decoded
    # Sorted by resource already (see _side_by_side): sorting here copied every column.
    result = conform_facts(facts).collect()
    del facts
    validate_facts(result)
    report.resources = result.height
    return Collection(result, report)


def _side_by_side(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The parts (one row per resource each) as one frame: every resource of any part, sorted.

    Each part's columns are placed against the sorted union of the ids, copied at most once,
    and not at all for a part that already holds every id in that order. A chain of full
    joins and a sort of the result copied every column three times: at a million resources
    that was most of the collection's peak memory. ``parts`` is emptied as they are placed,
    so that a part copied into place is freed (when nothing else holds it) before the next.
    """
    ids = _sorted_union([part.get_column("resource_id") for part in parts]).to_frame("resource_id")
    columns: list[pl.DataFrame] = [ids]
    parts.reverse()
    while parts:
        part = parts.pop()
        if part.height == ids.height and part.get_column("resource_id").equals(ids["resource_id"]):
            columns.append(part.drop("resource_id"))
            continue
        position = ids.join(
            part.select("resource_id").with_row_index("_position"),
            on="resource_id",
            how="left",
            validate="1:1",
            maintain_order="left",
        ).get_column("_position")
        part = part.drop("resource_id")
        # A column at a time, each dropped from the part once copied: gathering the whole part
        # at once held two copies of it (the inventory's, at a million records, the peak).
        placed: list[pl.Series] = []
        for name in part.columns:
            placed.append(part.get_column(name).gather(position))
            part = part.drop(name)
        columns.append(pl.DataFrame(placed))
        del part, placed, position
    return pl.concat(columns, how="horizontal")


def _sorted_union(ids: list[pl.Series]) -> pl.Series:
    """The distinct values of ``ids``, sorted.

    The bill's, the inventory's and the utilization's tables come sorted by id: merging them
    and dropping equal neighbours took 0.26 s of CPU at a million ids, sorting their
    concatenation 1.25 s. Any other input (unsorted, nulls) is sorted.
    """
    if any(column.null_count() or not column.is_sorted() for column in ids):
        return pl.concat(ids).unique().sort()
    merged = ids[0].to_frame("id")
    for column in ids[1:]:
        merged = merged.merge_sorted(column.to_frame("id"), key="id")
    union = merged.get_column("id")
    return union.filter(union.ne_missing(union.shift(1))).set_sorted()


def _coalesce(present: set[str], *names: str) -> pl.Expr:
    columns = [pl.col(name) for name in names if name in present]
    if not columns:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce(columns) if len(columns) > 1 else columns[0]
