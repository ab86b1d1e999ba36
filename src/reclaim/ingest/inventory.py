"""Inventory files: one record per resource with its attributes (CSV, JSON, JSON lines, Parquet).

Column names follow the facts table (``resource_id``, ``kind``, ``state``, ``instance_type``,
``attached``, ``volume_type``, ``size_gb``, ``created_at``, ``last_attached_at``, …) and a few
common spellings are accepted (``id``, ``type``, ``launch_time``, ``size_gib``). Unknown columns
are ignored. A record without a resource id, or with a value that cannot be read as the column's
type, is skipped and reported with its file and row number: a half-read resource could trigger
a wrong recommendation, a skipped one only a missed one. When a resource appears more than
once, the last record wins (exports append the newest state).
"""

from __future__ import annotations

__all__ = ["INVENTORY_ALIASES", "INVENTORY_FORMATS", "InventoryData", "read_inventory"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from reclaim.errors import ConfigError, SourceLocation
from reclaim.ingest.facts import FACT_SCHEMA, UTC_TIME
from reclaim.ingest.files import InputFile
from reclaim.ingest.parsing import clean_text, parse_bool, parse_number, parse_time, unreadable
from reclaim.ingest.records import RECORD_FORMATS, read_records, rename_columns
from reclaim.ingest.report import SAMPLES_PER_FILE, BadRow, FileReport, new_content

INVENTORY_FORMATS: Final = RECORD_FORMATS

INVENTORY_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "resource_id": ("id", "ResourceId", "arn"),
    "resource_name": ("name", "ResourceName"),
    "resource_type": ("type", "ResourceType"),
    "kind": (),
    "provider": (),
    "account_id": ("account", "SubAccountId"),
    "region": ("RegionId",),
    "state": ("status",),
    "instance_type": ("instance_class", "db_instance_class"),
    "attached": ("associated", "in_use"),
    "attached_to": ("instance_id", "association"),
    "attached_volume_count": ("volume_count",),
    "attached_volume_gb": ("volume_gb",),
    "volume_type": (),
    "provisioned_iops": ("iops",),
    "platform": ("platform_details", "os"),
    "size_gb": ("size_gib", "storage_gb", "allocated_storage"),
    "target_count": ("targets",),
    "engine": (),
    "lifecycle_policy": ("has_lifecycle_policy", "lifecycle"),
    "source_volume_id": ("volume_id",),
    "used_by_image": ("in_use_by_image",),
    "created_at": ("launch_time", "create_time", "created"),
    "last_attached_at": ("detached_at", "last_attach_time"),
    "state_changed_at": ("state_transition_time", "stopped_at"),
    "tags": ("Tags",),
}
"""Inventory column → other spellings accepted for it (any case)."""

_TEXT: Final = (
    "resource_name",
    "resource_type",
    "kind",
    "provider",
    "account_id",
    "region",
    "state",
    "instance_type",
    "attached_to",
    "volume_type",
    "engine",
    "source_volume_id",
    "platform",
)
_LOWER: Final = frozenset(
    {"kind", "provider", "region", "state", "volume_type", "engine", "platform"}
)


@dataclass
class InventoryData:
    """One row per resource: ``resource_id``, the inventory facts, and ``tags_json``."""

    per_resource: pl.DataFrame
    files: list[FileReport] = field(default_factory=list)


def inventory_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {"resource_id": pl.String()}
    for name in INVENTORY_ALIASES:
        if name in ("resource_id", "tags"):
            continue
        schema[name] = FACT_SCHEMA[name]
    schema["tags_json"] = pl.String()
    return schema


def read_inventory(
    files: Sequence[InputFile], *, hashes: dict[Path, str] | None = None
) -> InventoryData:
    """Read inventory files into one row per resource; report bad records."""
    frames: list[pl.DataFrame] = []
    reports: list[FileReport] = []
    for file, digest in new_content(files, "inventory", hashes, reports):
        frame, report = _read_one(file, digest)
        frames.append(frame.with_columns(pl.lit(len(frames), dtype=pl.UInt32).alias("_file")))
        reports.append(report)
    schema = inventory_schema()
    if not frames:
        return InventoryData(pl.DataFrame(schema=schema), reports)
    read = len(frames)
    combined = pl.concat(frames, how="vertical")
    del frames
    # Each step is skipped when it would change nothing (one file is in row order already, an
    # export lists a resource once and is often sorted by id): at a million records every one
    # of them copied the whole table, and the copies made the collection's peak.
    if read > 1 or not combined["_row"].is_sorted():
        combined = combined.sort("_file", "_row")
    if combined["resource_id"].n_unique() < combined.height:
        combined = combined.unique("resource_id", keep="last", maintain_order=True)
    per_resource = combined.select(list(schema))
    del combined
    if not per_resource["resource_id"].is_sorted():
        per_resource = per_resource.sort("resource_id")
    return InventoryData(per_resource, reports)


def _read_one(file: InputFile, digest: str) -> tuple[pl.DataFrame, FileReport]:
    raw, present = rename_columns(read_records(file), INVENTORY_ALIASES)
    if "resource_id" not in present:
        raise ConfigError(
            "inventory file lacks a 'resource_id' column",
            location=SourceLocation(str(file.path), 1),
            fix="name the column resource_id (or id, arn)",
        )
    dtypes = raw.collect_schema()
    schema = inventory_schema()
    exprs: list[pl.Expr] = [pl.col("_row"), clean_text(pl.col("resource_id")).alias("resource_id")]
    checks: list[tuple[pl.Expr, str]] = [
        (clean_text(pl.col("resource_id")).is_null(), "resource_id is empty")
    ]
    for name, dtype in schema.items():
        if name == "resource_id":
            continue
        source = "tags" if name == "tags_json" else name
        if source not in present:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        column = pl.col(source)
        raw_dtype = dtypes[source]
        if name == "tags_json" or name in _TEXT:
            value = clean_text(column)
            exprs.append((value.str.to_lowercase() if name in _LOWER else value).alias(name))
            continue
        if dtype == UTC_TIME:
            parsed = parse_time(column, raw_dtype)
            what = "a timestamp"
        elif dtype == pl.Boolean:
            parsed = parse_bool(column, raw_dtype)
            what = "true or false"
        else:
            parsed = parse_number(column, raw_dtype)
            what = "a number"
            if dtype.is_integer():
                checks.append(
                    (parsed.is_not_null() & (parsed != parsed.floor()), f"{source} is not whole")
                )
        checks.append((unreadable(column, parsed, raw_dtype), f"{source} is not {what}"))
        exprs.append(parsed.cast(dtype, strict=False).alias(name))
    bad = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(checks):
        bad = pl.when(condition).then(pl.lit(reason)).otherwise(bad)
    try:
        rows = raw.select(*exprs, bad.alias("_bad")).collect()
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(
            f"cannot parse inventory file: {(str(exc).splitlines() or ['?'])[0]}",
            location=SourceLocation(str(file.path)),
            fix="check that it is an unbroken CSV or JSON file",
        ) from exc
    bad_rows = rows.filter(pl.col("_bad").is_not_null())
    samples = tuple(
        BadRow(str(file.path), int(row), str(reason))
        for row, reason in bad_rows.head(SAMPLES_PER_FILE).select("_row", "_bad").iter_rows()
    )
    report = FileReport(
        path=str(file.path),
        kind="inventory",
        sha256=digest,
        rows=rows.height,
        bad_rows=bad_rows.height,
        samples=samples,
    )
    good = rows.filter(pl.col("_bad").is_null()) if bad_rows.height else rows
    return good.drop("_bad"), report
