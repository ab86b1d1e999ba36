"""Reading FOCUS billing exports (1.0 to 1.2 and newer) into per-resource cost facts.

One file or a folder of CSV, gzipped CSV or Parquet files, each scanned lazily by Polars: no
billing row ever becomes a Python object. Files of different FOCUS versions mix freely, since each
file is mapped to the same normalized columns before they are concatenated. Columns are found
without regard to case; ``x_…`` extension columns and anything else we do not use are ignored.

What real exports do and we accept: the literal text ``NULL``, blank cells, timestamps without
a zone (UTC, as the spec says), ``Z`` or offsets, JSON ``Tags`` (or a Parquet map), negative
costs (credits, refunds), and rows without a ``ResourceId`` (tax, support: counted as
unattributed cost). A row whose cost or charge period cannot be read is skipped and reported
with its file and row number. Tags that are not JSON, on the row a resource's tags are taken
from, are reported as a warning with their row: the cost is kept, the tags are not.
"""

from __future__ import annotations

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "BillingData",
    "aggregate_billing",
    "read_billing",
    "scan_billing_file",
]

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from reclaim.errors import ConfigError, SourceLocation
from reclaim.ingest.facts import UTC_TIME
from reclaim.ingest.files import FileFormat, InputFile, sha256_of
from reclaim.ingest.parsing import (
    NULL_STRINGS,
    clean_text,
    find_column,
    parse_number,
    parse_time,
    unreadable,
)
from reclaim.ingest.report import SAMPLES_PER_FILE, BadRow, FileReport, new_content

REQUIRED_COLUMNS: Final = (
    "BilledCost",
    "EffectiveCost",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ResourceId",
    "ServiceName",
    "BillingCurrency",
)
"""FOCUS columns a billing file must have (any case); a file without one is refused."""

OPTIONAL_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "resource_name": ("ResourceName",),
    "resource_type": ("ResourceType",),
    # FOCUS 1.2 added ServiceProviderName; ProviderName is the 1.0/1.1 column it supersedes.
    "provider": ("ServiceProviderName", "ProviderName"),
    "account_id": ("SubAccountId",),
    "account_name": ("SubAccountName",),
    "billing_account_id": ("BillingAccountId",),
    "service_category": ("ServiceCategory",),
    "region": ("RegionId", "Region"),
    "list_cost": ("ListCost",),
    "tags": ("Tags",),
}
"""Normalized name → FOCUS columns that may carry it, preferred first."""

BILLING_FORMATS: Final = frozenset({FileFormat.CSV, FileFormat.CSV_GZ, FileFormat.PARQUET})

# FOCUS ServiceCategory values; exports write them in any case ("networking", "Networking").
_SERVICE_CATEGORIES: Final = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)

_STRING_COLUMNS: Final = (
    "resource_id",
    "resource_name",
    "resource_type",
    "provider",
    "account_id",
    "account_name",
    "billing_account_id",
    "service",
    "service_category",
    "region",
    "currency",
    "tags",
)

ROW_SCHEMA: Final[dict[str, pl.DataType]] = {
    "_file": pl.UInt32(),
    "_row": pl.UInt32(),
    **{name: pl.String() for name in _STRING_COLUMNS},
    "effective": pl.Float64(),
    "billed": pl.Float64(),
    "list": pl.Float64(),
    "start": UTC_TIME,
    "end": UTC_TIME,
    "_bad": pl.String(),
}


@dataclass(frozen=True)
class BillingScan:
    """One billing file as a lazy frame of normalized rows (``ROW_SCHEMA``)."""

    file: InputFile
    rows: pl.LazyFrame
    has_list_cost: bool


@dataclass
class BillingData:
    """Per-resource cost facts from the bill, plus the account of what was read."""

    per_resource: pl.DataFrame
    as_of: datetime | None
    files: list[FileReport] = field(default_factory=list)
    unattributed_cost: float = 0.0


def _scan_raw(file: InputFile) -> pl.LazyFrame:
    path = file.path
    if file.format is FileFormat.PARQUET:
        return pl.scan_parquet(path)
    # Every column as text: types are read by our parsers so that a bad cell becomes a
    # reported bad row, not a failed file or a silently inferred string column.
    return pl.scan_csv(
        path,
        infer_schema=False,
        null_values=list(NULL_STRINGS),
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
    )


def scan_billing_file(file: InputFile, index: int) -> BillingScan:
    """Map one file's columns to ``ROW_SCHEMA`` lazily; refuse it if a required column lacks."""
    try:
        raw = _scan_raw(file)
        schema = raw.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ConfigError(
            f"cannot read billing file: {_first_line(exc)}",
            location=SourceLocation(str(file.path)),
            fix="give a FOCUS export as CSV, gzipped CSV or Parquet",
        ) from exc
    names = list(schema.names())
    actual: dict[str, str] = {}
    for required in REQUIRED_COLUMNS:
        found = find_column(names, required)
        if found is None:
            raise ConfigError(
                f"billing file lacks the required FOCUS column {required!r}",
                location=SourceLocation(str(file.path), 1),
                fix=f"export FOCUS 1.0 or newer with {required} (columns present: "
                f"{', '.join(names[:12])}{'…' if len(names) > 12 else ''})",
            )
        actual[required] = found
    optional: dict[str, str] = {}
    for key, candidates in OPTIONAL_COLUMNS.items():
        found = find_column(names, *candidates)
        if found is not None:
            optional[key] = found

    def dtype(column: str) -> pl.DataType:
        return schema[column]

    def text(key: str, column: str | None) -> pl.Expr:
        # Attributes stay as written here and are cleaned after the aggregation has reduced
        # millions of rows to one per resource: cleaning text per row is most of the cost.
        if column is None:
            return pl.lit(None, dtype=pl.String).alias(key)
        return pl.col(column).cast(pl.String).alias(key)

    costs = {
        "effective": actual["EffectiveCost"],
        "billed": actual["BilledCost"],
    }
    if "list_cost" in optional:
        costs["list"] = optional["list_cost"]
    times = {"start": actual["ChargePeriodStart"], "end": actual["ChargePeriodEnd"]}

    frame = raw.with_row_index("_row", offset=1)
    resource_id = pl.col(actual["ResourceId"]).cast(pl.String)
    parsed = [
        pl.lit(index, dtype=pl.UInt32).alias("_file"),
        pl.col("_row").cast(pl.UInt32),
        # Only the null spellings are removed per row; the id is the grouping key.
        pl.when(resource_id.is_in(NULL_STRINGS))
        .then(None)
        .otherwise(resource_id)
        .alias("resource_id"),
        text("resource_name", optional.get("resource_name")),
        text("resource_type", optional.get("resource_type")),
        text("provider", optional.get("provider")),
        text("account_id", optional.get("account_id")),
        text("account_name", optional.get("account_name")),
        text("billing_account_id", optional.get("billing_account_id")),
        text("service", actual["ServiceName"]),
        text("service_category", optional.get("service_category")),
        text("region", optional.get("region")),
        text("currency", actual["BillingCurrency"]),
        _tags_json(optional.get("tags"), dtype(optional["tags"]) if "tags" in optional else None),
    ]
    for key, column in costs.items():
        parsed.append(parse_number(pl.col(column), dtype(column)).alias(key))
    if "list" not in costs:
        parsed.append(pl.lit(None, dtype=pl.Float64).alias("list"))
    for key, column in times.items():
        parsed.append(parse_time(pl.col(column), dtype(column)).alias(key))

    # Each value is parsed once, into its column; the checks then read the parsed columns
    # beside the raw ones (kept as "_raw_<key>") instead of parsing again.
    raws = {**times, **costs}
    parsed.extend(pl.col(column).alias(f"_raw_{key}") for key, column in raws.items())
    bad_checks: list[tuple[pl.Expr, str]] = []
    for key, column in raws.items():
        bad_checks.append(
            (
                unreadable(pl.col(f"_raw_{key}"), pl.col(key), dtype(column)),
                f"{column} is not a {'timestamp' if key in times else 'number'}",
            )
        )
        if key != "list":
            bad_checks.append((pl.col(key).is_null(), f"{column} is empty"))
    bad_checks.append(
        (pl.col("end") < pl.col("start"), "ChargePeriodEnd is before ChargePeriodStart")
    )
    bad = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(bad_checks):
        bad = pl.when(condition).then(pl.lit(reason)).otherwise(bad)
    rows = frame.select(parsed).with_columns(bad.alias("_bad")).select(list(ROW_SCHEMA))
    return BillingScan(file=file, rows=rows, has_list_cost="list" in costs)


def _service_category(value: pl.Expr) -> pl.Expr:
    canonical = {name.lower(): name for name in _SERVICE_CATEGORIES}
    return value.str.to_lowercase().replace_strict(canonical, default=value, return_dtype=pl.String)


def _tags_json(column: str | None, dtype: pl.DataType | None) -> pl.Expr:
    """Tags as JSON text: as given for text, encoded for a Parquet map or struct."""
    if column is None or dtype is None:
        return pl.lit(None, dtype=pl.String).alias("tags")
    if isinstance(dtype, pl.Struct):
        return pl.col(column).struct.json_encode().alias("tags")
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        # A Parquet MAP arrives as a list of {key, value}: keep it as a JSON array of pairs,
        # which the tag decoder accepts beside objects.
        entries = pl.col(column).list.eval(pl.element().struct.json_encode()).list.join(",")
        return (
            pl.when(pl.col(column).is_null())
            .then(None)
            .otherwise(pl.concat_str(pl.lit("["), entries, pl.lit("]")))
            .alias("tags")
        )
    return clean_text(pl.col(column)).alias("tags")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


Progress = Callable[[str], None]


def read_billing(
    files: Sequence[InputFile],
    *,
    as_of: datetime | None = None,
    hashes: dict[Path, str] | None = None,
    progress: Progress | None = None,
) -> BillingData:
    """Scan billing files and aggregate them per resource.

    ``as_of`` is the end of the 30-day window; by default the latest ChargePeriodEnd of any good
    row. Files with the same content (per ``hashes``) are read once.
    """
    hashes = hashes if hashes is not None else {f.path: sha256_of(f.path) for f in files}
    reports: list[FileReport] = []
    scans: list[BillingScan] = []
    for file, _digest in new_content(files, "billing", hashes, reports):
        scans.append(scan_billing_file(file, len(scans)))
    if not scans:
        return BillingData(_empty_per_resource(), as_of, reports)
    if progress:
        progress(f"checking {len(scans)} billing file(s)")
    rows = pl.concat([scan.rows for scan in scans], how="vertical")
    stats, problems = _check(rows, scans)
    data_end = stats["max_end"].max()
    effective_as_of = as_of if as_of is not None else data_end
    unattributed = float(stats["unattributed"].sum() or 0.0)
    per_resource = _empty_per_resource()
    tag_problems: dict[int, list[BadRow]] = {}
    if isinstance(effective_as_of, datetime):
        if progress:
            progress("aggregating billing rows per resource")
        per_resource, tag_rows = aggregate_billing(
            [scan.rows for scan in scans],
            effective_as_of,
            has_list_cost=any(scan.has_list_cost for scan in scans),
        )
        for index, row in tag_rows.select("_file", "_row").iter_rows():
            path = str(scans[index].file.path)
            tag_problems.setdefault(index, []).append(
                BadRow(path, int(row), "Tags is not a JSON object; tags ignored", dropped=False)
            )
    for index, scan in enumerate(scans):
        stat = stats.filter(pl.col("_file") == index)
        file_rows = problems.filter(pl.col("_file") == index)
        warnings = tag_problems.get(index, [])
        samples = tuple(
            BadRow(str(scan.file.path), int(row), str(reason))
            for row, reason in file_rows.select("_row", "_bad").iter_rows()
        ) + tuple(warnings[:SAMPLES_PER_FILE])
        reports.append(
            FileReport(
                path=str(scan.file.path),
                kind="billing",
                sha256=hashes[scan.file.path],
                rows=int(stat["rows"].sum()),
                bad_rows=int(stat["bad"].sum()),
                warnings=len(warnings),
                samples=samples,
            )
        )
    end = effective_as_of if isinstance(effective_as_of, datetime) else None
    return BillingData(per_resource, end, reports, unattributed)


def _check(rows: pl.LazyFrame, scans: list[BillingScan]) -> tuple[pl.DataFrame, pl.DataFrame]:
    good = pl.col("_bad").is_null()
    stats = rows.group_by("_file").agg(
        rows=pl.len(),
        bad=pl.col("_bad").is_not_null().sum(),
        max_end=pl.col("end").filter(good).max(),
        unattributed=pl.col("effective").filter(good & pl.col("resource_id").is_null()).sum(),
    )
    problems = (
        rows.filter(pl.col("_bad").is_not_null())
        .select("_file", "_row", "_bad")
        .group_by("_file")
        .agg(pl.all().sort_by("_row").head(SAMPLES_PER_FILE))
        .explode("_row", "_bad")
    )
    try:
        stats_df, problems_df = pl.collect_all([stats, problems], engine="streaming")
    except pl.exceptions.PolarsError as exc:
        # A CSV that breaks the parser itself (an unterminated quote, a binary file) only
        # shows up here, when it is read; name the files so the user knows where to look.
        paths = ", ".join(str(scan.file.path) for scan in scans)
        raise ConfigError(
            f"cannot parse billing data: {_first_line(exc)}",
            location=SourceLocation(paths),
            fix="check that the file is an unbroken CSV or Parquet export",
        ) from exc
    return stats_df, problems_df.sort("_file", "_row")


_ATTRIBUTES: Final = (
    "resource_name",
    "resource_type",
    "provider",
    "account_id",
    "account_name",
    "billing_account_id",
    "service",
    "service_category",
    "region",
    "currency",
)


def aggregate_billing(
    files: Sequence[pl.LazyFrame], as_of: datetime, *, has_list_cost: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per resource: 30- and 7-day costs ending at ``as_of``, attributes, latest tags.

    Returns that frame and the (``_file``, ``_row``) of the tag values that were not JSON
    objects (those resources get no tags from the bill).

    ``files`` are the normalized rows of each file (``ROW_SCHEMA``), in order. Attributes and
    tags come from one row per resource, the last one in file order (for tags, the last one
    that has tags): picking rows by number and fetching them with a filter is several times
    cheaper in time and memory than aggregating millions of strings, and files holding no
    picked row (older months, usually) are not read again at all.
    """
    window_30 = as_of - timedelta(days=30)
    window_7 = as_of - timedelta(days=7)
    in_30 = (pl.col("start") >= window_30) & (pl.col("start") < as_of)
    in_7 = (pl.col("start") >= window_7) & (pl.col("start") < as_of)
    key = (pl.col("_file").cast(pl.UInt64) * (1 << 32) + pl.col("_row").cast(pl.UInt64)).alias(
        "_key"
    )
    good_rows = pl.col("_bad").is_null() & pl.col("resource_id").is_not_null()
    good = pl.concat(files, how="vertical").filter(good_rows).with_columns(key)
    per_file = [frame.filter(good_rows) for frame in files]

    def masked(column: str, window: pl.Expr) -> pl.Expr:
        return pl.when(window).then(pl.col(column)).otherwise(0.0)

    # Window masks as columns, then plain sums: filters inside the aggregation cost a third more.
    numbers = (
        good.select(
            "resource_id",
            "start",
            "end",
            "_key",
            masked("effective", in_30).alias("cost_30d"),
            masked("billed", in_30).alias("billed_cost_30d"),
            masked("list", in_30).alias("list_cost_30d"),
            masked("effective", in_7).alias("cost_7d"),
        )
        .group_by("resource_id")
        .agg(
            pl.col("cost_30d").sum(),
            pl.col("billed_cost_30d").sum(),
            pl.col("list_cost_30d").sum(),
            pl.col("cost_7d").sum(),
            pl.col("start").min().alias("first_seen"),
            pl.col("end").max().alias("last_seen"),
            pl.col("_key").max().alias("_latest"),
        )
        .collect(engine="streaming")
    )
    # A filter on a small key set streams; a semi-join materialized every row's strings.
    picked = _rows_by_key(per_file, numbers["_latest"], "resource_id", *_ATTRIBUTES, "tags")
    attributes = picked.select(
        "resource_id",
        *[clean_text(pl.col(name)).alias(name) for name in _ATTRIBUTES],
    ).with_columns(
        pl.col("provider").str.to_lowercase(),
        pl.col("region").str.to_lowercase(),
        pl.col("currency").str.to_uppercase(),
        _service_category(pl.col("service_category")),
    )
    tagged = picked.filter(pl.col("tags").is_not_null())
    untagged = picked.filter(pl.col("tags").is_null())["resource_id"]
    if untagged.len():
        # Reading every row's tags to find each resource's last tagged row doubles the cost
        # of the aggregation; only resources whose last row is untagged (a tax or credit row,
        # say) need it, so only they pay for it.
        earlier = (
            good.filter(pl.col("resource_id").is_in(untagged.implode()))
            .filter(pl.col("tags").is_not_null())
            .group_by("resource_id")
            .agg(pl.col("_key").max())
            .collect(engine="streaming")
        )
        if earlier.height:
            tagged = pl.concat(
                [
                    tagged,
                    _rows_by_key(per_file, earlier["_key"], "resource_id", *_ATTRIBUTES, "tags"),
                ]
            )
    tag_text = clean_text(pl.col("tags"))
    looks_like_json = tag_text.str.contains(r"^\s*[\[{]") & tag_text.str.contains(r"[\]}]\s*$")
    tags = tagged.select(
        "resource_id",
        "_file",
        "_row",
        tag_text.alias("tags_json"),
        (tag_text.is_not_null() & ~looks_like_json).alias("_bad_tags"),
    )
    frame = (
        numbers.drop("_latest")
        .join(attributes, on="resource_id", how="left")
        .join(
            tags.filter(~pl.col("_bad_tags")).select("resource_id", "tags_json"),
            on="resource_id",
            how="left",
        )
    )
    if not has_list_cost:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("list_cost_30d"))
    bad_tags = tags.filter(pl.col("_bad_tags")).select("_file", "_row").sort("_file", "_row")
    return frame.sort("resource_id"), bad_tags


def _rows_by_key(files: list[pl.LazyFrame], keys: pl.Series, *columns: str) -> pl.DataFrame:
    """The rows whose ``_file << 32 | _row`` key is in ``keys``, reading only their files."""
    wanted = pl.DataFrame({"_key": keys}).select(
        (pl.col("_key") // (1 << 32)).cast(pl.UInt32).alias("_file"),
        (pl.col("_key") % (1 << 32)).cast(pl.UInt32).alias("_row"),
    )
    parts = [
        files[index]
        .filter(pl.col("_row").is_in(group["_row"].implode()))
        .select(
            (pl.col("_file").cast(pl.UInt64) * (1 << 32) + pl.col("_row").cast(pl.UInt64)).alias(
                "_key"
            ),
            "_file",
            "_row",
            *columns,
        )
        for (index,), group in wanted.group_by("_file", maintain_order=True)
    ]
    if not parts:
        return pl.DataFrame(
            schema={"_key": pl.UInt64, "_file": pl.UInt32, "_row": pl.UInt32}
            | {name: ROW_SCHEMA[name] for name in columns}
        )
    # One file at a time: collecting them together decodes every file's strings at once.
    frames: list[pl.DataFrame] = [part.collect(engine="streaming") for part in parts]
    return pl.concat(frames, how="vertical")


def _empty_per_resource() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        name: pl.String() for name in _STRING_COLUMNS if name != "tags"
    }
    schema.update(
        {
            "cost_30d": pl.Float64(),
            "billed_cost_30d": pl.Float64(),
            "list_cost_30d": pl.Float64(),
            "cost_7d": pl.Float64(),
            "first_seen": UTC_TIME,
            "last_seen": UTC_TIME,
            "tags_json": pl.String(),
        }
    )
    return pl.DataFrame(schema=schema)
