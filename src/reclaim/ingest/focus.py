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

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

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
    unreadable_number,
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
    # FOCUS 1.2 added ServiceProviderName; ProviderName is the 1.0/1.1 column it supersedes,
    # and Provider the pre-1.0 (0.5) name of that one.
    "provider": ("ServiceProviderName", "ProviderName", "Provider"),
    "account_id": ("SubAccountId",),
    "account_name": ("SubAccountName",),
    "billing_account_id": ("BillingAccountId",),
    "service_category": ("ServiceCategory",),
    "region": ("RegionId", "Region"),
    "list_cost": ("ListCost",),
    "tags": ("Tags",),
    "billing_period": ("BillingPeriodStart",),
    "commitment_id": ("CommitmentDiscountId",),
    # FOCUS 1.0 added CommitmentDiscountStatus (Used, Unused); 0.5 said it in ChargeSubcategory
    # ("Used Commitment", "Unused Commitment").
    "commitment_status": ("CommitmentDiscountStatus", "ChargeSubcategory"),
    "commitment_type": ("CommitmentDiscountType",),
    "commitment_category": ("CommitmentDiscountCategory",),
    "pricing_unit": ("PricingUnit",),
    "consumed_unit": ("ConsumedUnit",),
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
    "commitment_id",
    "commitment_status",
    "commitment_type",
    "commitment_category",
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
    "period": UTC_TIME,
    "iops_unit": pl.Boolean(),
    "_hash": pl.UInt64(),
    "_bad": pl.String(),
}


@dataclass(frozen=True)
class BillingScan:
    """One billing file as a lazy frame of normalized rows (``ROW_SCHEMA``)."""

    file: InputFile
    rows: pl.LazyFrame
    has_list_cost: bool
    raw: pl.LazyFrame
    has_commitments: bool = False
    """The file has a CommitmentDiscountId column."""
    """The file as read, every column as given, with its ``_row`` number."""


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
                f"billing file lacks the required FOCUS column {required!r}"
                + _not_focus_hint(names),
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
    period_column = optional.get("billing_period")
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
        text("commitment_id", optional.get("commitment_id")),
        _commitment_status(optional.get("commitment_status")),
        text("commitment_type", optional.get("commitment_type")),
        text("commitment_category", optional.get("commitment_category")),
        _iops_unit(optional.get("pricing_unit"), optional.get("consumed_unit")),
        _tags_json(optional.get("tags"), dtype(optional["tags"]) if "tags" in optional else None),
    ]
    for key, column in costs.items():
        parsed.append(parse_number(pl.col(column), dtype(column)).alias(key))
    if "list" not in costs:
        parsed.append(pl.lit(None, dtype=pl.Float64).alias("list"))
    for key, column in times.items():
        parsed.append(parse_time(pl.col(column), dtype(column)).alias(key))
    if period_column is not None:
        parsed.append(parse_time(pl.col(period_column), dtype(period_column)).alias("period"))
    else:
        # FOCUS 1.0 requires BillingPeriodStart; without it the calendar month of the charge
        # is the best guess at which export run a row belongs to.
        parsed.append(pl.lit(None, dtype=UTC_TIME).alias("period"))

    # Each value is parsed once, into its column; the checks then read the parsed columns
    # beside the raw ones (kept as "_raw_<key>") instead of parsing again.
    raws = {**times, **costs}
    parsed.extend(pl.col(column).alias(f"_raw_{key}") for key, column in raws.items())
    bad_checks: list[tuple[pl.Expr, str]] = []
    for key, column in raws.items():
        raw_value = pl.col(f"_raw_{key}")
        if key in times:
            bad_checks.append(
                (unreadable(raw_value, pl.col(key), dtype(column)), f"{column} is not a timestamp")
            )
        else:
            comma, infinite, other = unreadable_number(raw_value, dtype(column))
            bad_checks += [
                (
                    comma,
                    f"{column} has a comma (decimal comma or thousands separator); FOCUS "
                    "numbers use a decimal point and no separator",
                ),
                (infinite, f"{column} is not a finite number"),
                (other, f"{column} is not a number"),
            ]
        if key != "list":
            bad_checks.append((pl.col(key).is_null(), f"{column} is empty"))
    if file.format is not FileFormat.PARQUET:
        for key, column in (
            ("service", actual["ServiceName"]),
            ("currency", actual["BillingCurrency"]),
        ):
            # FOCUS never leaves these empty; a CSV line cut short reads as blanks, and the
            # rest of such a row cannot be trusted.
            bad_checks.append(
                (
                    clean_text(pl.col(key)).is_null(),
                    f"{column} is empty (FOCUS requires it; a truncated row?)",
                )
            )
    if file.format is not FileFormat.PARQUET:
        # Bytes that are not UTF-8 (a Latin-1 export) are read as U+FFFD, which would make a
        # new resource id or name that exists nowhere.
        mangled = pl.any_horizontal(
            [pl.col(name).str.contains("\ufffd", literal=True) for name in _STRING_COLUMNS]
        ).fill_null(False)
        bad_checks.append(
            (mangled, "text is not UTF-8 (Latin-1 or another encoding?); export the file as UTF-8")
        )
    bad_checks.append(
        (pl.col("end") < pl.col("start"), "ChargePeriodEnd is before ChargePeriodStart")
    )
    bad = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(bad_checks):
        bad = pl.when(condition).then(pl.lit(reason)).otherwise(bad)
    period = pl.col("period")
    if period_column is None:
        period = pl.col("start").dt.truncate("1mo")
    # A cheap key for finding duplicates: rows equal in it are compared in every column later.
    same = pl.struct("resource_id", "start", "end", "effective", "billed").hash(seed=0x5EC1A1)
    # The unused part of a commitment is that commitment's cost: rows without a ResourceId
    # that say so are booked on the commitment, not counted as unattributed.
    unused_on_commitment = (
        pl.when(
            pl.col("resource_id").is_null()
            & (pl.col("commitment_status") == "unused")
            & ~pl.col("commitment_id").is_in(NULL_STRINGS)
        )
        .then(pl.col("commitment_id"))
        .otherwise(pl.col("resource_id"))
        .alias("resource_id")
    )
    rows = (
        frame.select(parsed)
        .with_columns(bad.alias("_bad"), period.alias("period"), unused_on_commitment)
        .with_columns(same.alias("_hash"))
        .select(list(ROW_SCHEMA))
    )
    return BillingScan(
        file=file,
        rows=rows,
        has_list_cost="list" in costs,
        raw=frame,
        has_commitments="commitment_id" in optional,
    )


def _commitment_status(column: str | None) -> pl.Expr:
    """'used', 'unused' or null, from CommitmentDiscountStatus or a 0.5 ChargeSubcategory."""
    if column is None:
        return pl.lit(None, dtype=pl.String).alias("commitment_status")
    value = pl.col(column).cast(pl.String).str.to_lowercase()
    return (
        pl.when(value.str.contains("unused"))
        .then(pl.lit("unused"))
        .when(value.str.contains("used"))
        .then(pl.lit("used"))
        .otherwise(None)
        .alias("commitment_status")
    )


def _iops_unit(*columns: str | None) -> pl.Expr:
    """The row prices provisioned IOPS (PricingUnit or ConsumedUnit 'IOPS-Mo' and the like)."""
    present = [pl.col(c).cast(pl.String).str.contains("(?i)iops") for c in columns if c]
    if not present:
        return pl.lit(False).alias("iops_unit")
    return pl.any_horizontal(present).fill_null(False).alias("iops_unit")


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


_FOREIGN_EXPORTS: Final = (
    (("lineitem/unblendedcost", "line_item_unblended_cost", "identity/lineitemid"), "an AWS CUR"),
    (
        ("costinbillingcurrency", "pretaxcost", "metercategory", "subscriptionguid"),
        "an Azure cost export (EA or MCA, not FOCUS)",
    ),
    (("service.description", "sku.description", "cost_type"), "a Google Cloud billing export"),
)


def _not_focus_hint(names: list[str]) -> str:
    """Why a file has no FOCUS columns, when that can be told: another format or delimiter."""
    lower = {name.lower() for name in names}
    for columns, what in _FOREIGN_EXPORTS:
        if lower & set(columns):
            return f"; this looks like {what}: export FOCUS or convert it to FOCUS"
    if len(names) == 1:
        for delimiter, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if delimiter in names[0]:
                return f"; its columns are separated by {label}, FOCUS CSV uses commas"
    return ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


Progress = Callable[[str], None]

OUTLIER_DAYS: Final = 31
"""A row ending more than this many days after the bulk of the data (a billing period and a
little: monthly charges end at the month's end) is an outlier, reported and skipped."""

_DAY_US: Final = 86_400_000_000

_BULK_QUANTILE: Final = 0.99

GROUP_ROWS: int = 2_000_000
"""Billing files are read in groups of about this many rows (a file is never split): every
pass over the bill (the survey, restated runs, duplicate keys, the per-resource sums) runs
once per group and its small results are combined, so memory follows one group, not the
length of the history. One streaming query over a concatenation of all files read them side
by side and held about twice the memory per file (30,000 resources over 13 months: 2.6 GB
against 0.4 GB per file)."""

FOLD_ROWS: int = 3 * GROUP_ROWS
"""The bill's per-resource running total is grouped again with the rows of the groups read
since, once they reach this many rows: with every group (about a million resources and two
million rows, 15 times over at 1 M x 30 days) regrouping the total was most of the sums' CPU;
every third group it is about 2 s of CPU less, for two more groups' rows held (~170 MB each)."""

_CSV_BYTES_PER_ROW: Final = 250
"""A rough size of a FOCUS CSV row, to guess a CSV file's rows from its size."""
"""The window's end is found among the first 99% of rows by end time, so that up to 1% of rows
with absurd dates cannot move it."""


@dataclass(frozen=True)
class _Run:
    """The files of one export run (one folder) holding one billing period of one account."""

    folder: str
    files: frozenset[int]
    accounts: frozenset[str | None]
    end: datetime
    modified: float


def read_billing(
    files: Sequence[InputFile],
    *,
    as_of: datetime | None = None,
    hashes: dict[Path, str] | None = None,
    progress: Progress | None = None,
) -> BillingData:
    """Scan billing files and aggregate them per resource.

    ``as_of`` is the end of the 30-day window; by default the end of the bulk of the data: the
    latest ChargePeriodEnd once rows more than ``OUTLIER_DAYS`` past 99% of the data are set
    aside as outliers (reported, skipped). Files with the same content (per ``hashes``) are read
    once. When several export runs (folders) restate one billing period of one billing account,
    only the latest run counts; exact duplicate rows count once and the others are reported.
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
    groups = _file_groups(scans)
    counts, days, problems = _survey(scans, groups)

    limit, data_end = _window(days, as_of)
    effective_as_of = as_of if as_of is not None else data_end
    if progress:
        progress("looking for restated runs and duplicate rows")
    superseded, superseding = _superseded_runs(scans, groups, limit)
    good = pl.col("_bad").is_null() & (pl.col("end") < limit)
    kept = [
        scan.rows.filter(good & ~_in_periods(superseded.get(index, [])))
        for index, scan in enumerate(scans)
    ]
    has_commitments = any(scan.has_commitments for scan in scans)
    sums: _Sums | None = None
    duplicates: dict[int, dict[int, tuple[str, float]]] = {}
    if isinstance(effective_as_of, datetime):
        if progress:
            progress("aggregating billing rows per resource")
        # The duplicate keys come from the pass that sums the bill: each group is read once
        # for both. A bill with copies is summed again without them (copies are rare).
        sums = _sums(kept, groups, effective_as_of, has_commitments=has_commitments, keys=True)
        duplicates = _duplicates(kept, scans, groups, effective_as_of, keys=sums.keys)
        sums.keys = None
    if duplicates:
        sums = None
        kept = [
            frame.filter(~pl.col("_row").is_in(duplicates.get(index, {}).keys()))
            if index in duplicates
            else frame
            for index, frame in enumerate(kept)
        ]
    outliers = _outliers(scans, days, limit, data_end)

    live = days.filter(pl.col("day") < limit)
    unattributed = float(live["unattributed"].sum() or 0.0)
    unattributed -= sum(cost for _, cost, _ in superseding.values())
    unattributed -= sum(cost for rows_ in duplicates.values() for _, cost in rows_.values())

    per_resource = _empty_per_resource()
    tag_problems: dict[int, list[BadRow]] = {}
    if isinstance(effective_as_of, datetime):
        per_resource, tag_rows = aggregate_billing(
            kept,
            effective_as_of,
            has_list_cost=any(scan.has_list_cost for scan in scans),
            has_commitments=has_commitments,
            groups=groups,
            sums=sums,
        )
        for index, row in tag_rows.select("_file", "_row").iter_rows():
            path = str(scans[index].file.path)
            tag_problems.setdefault(index, []).append(
                BadRow(path, int(row), "Tags is not a JSON object; tags ignored", dropped=False)
            )
    for index, scan in enumerate(scans):
        path = str(scan.file.path)
        stat = counts.filter(pl.col("_file") == index)
        file_rows = problems.filter(pl.col("_file") == index)
        warnings = tag_problems.get(index, [])
        dropped = [
            *(
                BadRow(path, int(row), str(reason))
                for row, reason in file_rows.select("_row", "_bad").iter_rows()
            ),
            *outliers.get(index, ([], 0))[0],
            *(
                BadRow(path, row, reason)
                for row, (reason, _) in sorted(duplicates.get(index, {}).items())
            ),
        ]
        dropped.sort(key=lambda bad: bad.row)
        extra_bad = outliers.get(index, ([], 0))[1] + len(duplicates.get(index, {}))
        lost = superseding.get(index)
        reports.append(
            FileReport(
                path=path,
                kind="billing",
                sha256=hashes[scan.file.path],
                rows=int(stat["rows"].sum()),
                bad_rows=int(stat["bad"].sum()) + extra_bad,
                warnings=len(warnings),
                samples=tuple(dropped[:SAMPLES_PER_FILE]) + tuple(warnings[:SAMPLES_PER_FILE]),
                superseded=lost[0] if lost else 0,
                superseded_by=lost[2] if lost else None,
            )
        )
    end = effective_as_of if isinstance(effective_as_of, datetime) else None
    return BillingData(per_resource, end, reports, unattributed)


def _file_groups(scans: Sequence[BillingScan]) -> list[list[int]]:
    """Consecutive files in groups of about ``GROUP_ROWS`` rows (see there)."""
    groups: list[list[int]] = []
    rows_in_group = 0
    for index, scan in enumerate(scans):
        rows = _estimated_rows(scan.file)
        if groups and rows_in_group + rows <= GROUP_ROWS:
            groups[-1].append(index)
            rows_in_group += rows
        else:
            groups.append([index])
            rows_in_group = rows
    return groups


def _estimated_rows(file: InputFile) -> int:
    """A file's rows: exact for Parquet (from its footer), guessed from the size for CSV."""
    try:
        if file.format is FileFormat.PARQUET:
            return int(pl.scan_parquet(file.path).select(pl.len()).collect().item())
        size = file.path.stat().st_size
    except (pl.exceptions.PolarsError, OSError):
        # Unreadable here means unreadable later too, where it is reported properly.
        return GROUP_ROWS
    compressed = 8 if file.format is FileFormat.CSV_GZ else 1
    return size * compressed // _CSV_BYTES_PER_ROW


def _grouped(scans: Sequence[BillingScan], group: Sequence[int]) -> pl.LazyFrame:
    return pl.concat([scans[index].rows for index in group], how="vertical")


def _survey(
    scans: list[BillingScan], groups: Sequence[Sequence[int]]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One streaming pass per file group: per-file counts, good rows per (file, period, end
    day) and the first bad rows of each file. Every result is per file, so the groups' results
    are simply put together."""
    # Two groups at a time: one group's queries kept about one core of two busy (the survey
    # of 1 M x 30 days: 5.6 s of CPU in 6.1 s at load 0.4).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reclaim-survey") as pool:
        results = list(pool.map(lambda group: _survey_group(_grouped(scans, group), scans), groups))
    counts_df, days_df, problems_df = (
        pl.concat([result[part] for result in results], how="vertical") for part in range(3)
    )
    days_df = days_df.with_columns((pl.col("day") * _DAY_US).cast(UTC_TIME).alias("day"))
    return counts_df, days_df, problems_df.sort("_file", "_row")


def _survey_group(
    rows: pl.LazyFrame, scans: list[BillingScan]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    good = pl.col("_bad").is_null()
    counts = rows.group_by("_file").agg(
        rows=pl.len(),
        bad=pl.col("_bad").is_not_null().sum(),
    )
    days = (
        rows.filter(good)
        # Whole days since the epoch as integers: truncating zoned times cost more than the
        # rest of this pass.
        .group_by("_file", "period", (pl.col("end").cast(pl.Int64) // _DAY_US).alias("day"))
        .agg(
            n=pl.len(),
            max_end=pl.col("end").max(),
            unattributed=pl.col("effective").filter(pl.col("resource_id").is_null()).sum(),
        )
    )
    problems = (
        rows.filter(pl.col("_bad").is_not_null())
        .select("_file", "_row", "_bad")
        .group_by("_file")
        .agg(pl.all().sort_by("_row").head(SAMPLES_PER_FILE))
        .explode("_row", "_bad")
    )
    try:
        counts_df, days_df, problems_df = pl.collect_all(
            [counts, days, problems], engine="streaming"
        )
    except pl.exceptions.PolarsError as exc:
        # A CSV that breaks the parser itself (an unterminated quote, a binary file) only
        # shows up here, when it is read; name the files so the user knows where to look.
        paths = ", ".join(str(scan.file.path) for scan in scans)
        raise ConfigError(
            f"cannot parse billing data: {_first_line(exc)}",
            location=SourceLocation(paths),
            fix="check that the file is an unbroken CSV or Parquet export",
        ) from exc
    return counts_df, days_df, problems_df


def _window(days: pl.DataFrame, as_of: datetime | None) -> tuple[datetime, datetime | None]:
    """(outlier limit, end of the data): rows ending at or after the limit are outliers."""
    if not days.height:
        far = datetime.max.replace(tzinfo=UTC) if as_of is None else as_of
        return far, None
    per_day = days.group_by("day").agg(pl.col("n").sum(), pl.col("max_end").max()).sort("day")
    cumulative = per_day["n"].cum_sum()
    total = int(per_day["n"].sum())
    # The day holding the row at the 99th percentile (lower) of rows ordered by end.
    rank = int(_BULK_QUANTILE * (total - 1))
    bulk_day: datetime = per_day["day"][int((cumulative <= rank).sum())]
    anchor = bulk_day + timedelta(days=1)
    if as_of is not None and as_of > anchor:
        anchor = as_of
    limit = anchor + timedelta(days=OUTLIER_DAYS)
    # The data ends where the days after the bulk stop following each other as they did
    # before: a stray row weeks past a daily export's end (or a monthly fee ending at the
    # month's end) must not slide the whole 30-day window away from the data.
    end_days: list[datetime] = per_day["day"].to_list()
    ends: list[datetime] = per_day["max_end"].to_list()
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(end_days))
    usual = max(timedelta(days=2), 2 * gaps[len(gaps) // 2]) if gaps else timedelta(days=2)
    last = end_days.index(bulk_day)
    while (
        last + 1 < len(end_days)
        and end_days[last + 1] < limit
        and end_days[last + 1] - end_days[last] <= usual
    ):
        last += 1
    data_end = max(ends[: last + 1])
    return limit, data_end if isinstance(data_end, datetime) else None


def _in_periods(periods: Sequence[tuple[datetime | None, str | None]]) -> pl.Expr:
    match = pl.lit(False)
    for period, account in periods:
        match = match | (
            pl.col("period").eq_missing(pl.lit(period, dtype=UTC_TIME))
            & pl.col("billing_account_id").eq_missing(pl.lit(account, dtype=pl.String))
        )
    return match


def _superseded_runs(
    scans: list[BillingScan], groups: Sequence[Sequence[int]], limit: datetime
) -> tuple[dict[int, list[tuple[datetime | None, str | None]]], dict[int, tuple[int, float, str]]]:
    """Which (billing period, billing account) of which file an export run restated later.

    AWS and Azure deliver month-to-date exports: each run writes a folder restating the whole
    billing period so far. Summing two runs counts the month twice, so per period and billing
    account only the latest run (the one reaching furthest, then the newest files) counts. An
    older run is set aside only when the later one covers all its sub-accounts: exports scoped
    to one subscription each share a billing account but not their rows.

    Returns, per file, the (period, billing account) pairs to skip, and per file the number of
    rows skipped, their unattributed cost and the folder of the run that replaced them.
    """
    folder_of = {index: str(scan.file.path.parent) for index, scan in enumerate(scans)}
    if len(set(folder_of.values())) < 2:
        return {}, {}
    # Per file, so one file group at a time.
    scopes_by_file = pl.concat(
        [
            _grouped(scans, group)
            .filter(pl.col("_bad").is_null() & (pl.col("end") < limit))
            .group_by("_file", "period", "billing_account_id", "account_id")
            .agg(
                n=pl.len(),
                max_end=pl.col("end").max(),
                unattributed=pl.col("effective").filter(pl.col("resource_id").is_null()).sum(),
            )
            .collect(engine="streaming")
            for group in groups
        ],
        how="vertical",
    )
    modified = {index: _mtime(scan.file.path) for index, scan in enumerate(scans)}
    scopes = (
        scopes_by_file.with_columns(
            pl.col("_file").replace_strict(folder_of, return_dtype=pl.String).alias("_folder")
        )
        .group_by("period", "billing_account_id", "_folder")
        .agg(
            pl.col("_file").unique(),
            pl.col("account_id").unique(),
            pl.col("max_end").max(),
        )
    )
    skip: dict[int, list[tuple[datetime | None, str | None]]] = {}
    lost: dict[int, tuple[int, float, str]] = {}
    for (period, account), group in scopes.group_by(
        "period", "billing_account_id", maintain_order=True
    ):
        if group.height < 2:
            continue
        runs = sorted(
            (
                _Run(
                    folder=str(row["_folder"]),
                    files=frozenset(int(f) for f in row["_file"]),
                    accounts=frozenset(row["account_id"]),
                    end=row["max_end"],
                    modified=max(modified[int(f)] for f in row["_file"]),
                )
                for row in group.iter_rows(named=True)
            ),
            key=lambda run: (run.end, run.modified, run.folder),
            reverse=True,
        )
        latest = runs[0]
        for run in runs[1:]:
            if not run.accounts <= latest.accounts:
                continue
            for index in run.files:
                skip.setdefault(index, []).append((period, account))
                part = scopes_by_file.filter(
                    (pl.col("_file") == index)
                    & pl.col("period").eq_missing(pl.lit(period, dtype=UTC_TIME))
                    & pl.col("billing_account_id").eq_missing(pl.lit(account))
                )
                n, cost, _ = lost.get(index, (0, 0.0, ""))
                lost[index] = (
                    n + int(part["n"].sum()),
                    cost + float(part["unattributed"].sum() or 0.0),
                    latest.folder,
                )
    return skip, lost


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _duplicates(
    kept: list[pl.LazyFrame],
    scans: list[BillingScan],
    groups: Sequence[Sequence[int]],
    as_of: datetime,
    *,
    keys: pl.Series | None = None,
) -> dict[int, dict[int, tuple[str, float]]]:
    """Exact duplicates among the rows that count: per file, row → (reason, unattributed cost).

    ``keys``: the ``_hash`` of every row of the window, when a pass over the bill gathered
    them already (see :func:`_sums`).

    Only the rows of the cost window are searched (their amounts are the only ones summed),
    so the memory this takes follows the window, not the length of the history. A hash table
    of every row's key cost gigabytes at 30 M rows; one sorted column of 8-byte keys, where
    equal keys are neighbours, costs a few hundred megabytes. Rows with equal keys are then
    compared in every column of the file, so two charges differing only in a column we do
    not read (a SKU, a description) are not taken for copies. The first occurrence in file
    order counts; every later copy is a bad row naming it.
    """
    start = as_of - timedelta(days=30)
    in_window = (pl.col("start") >= start) & (pl.col("start") < as_of)
    if keys is None:
        # One file group at a time: months outside the window are read but hold nothing.
        keys = pl.concat(
            [
                pl.concat([kept[index].filter(in_window).select("_hash") for index in group])
                .collect(engine="streaming")
                .get_column("_hash")
                for group in groups
            ]
        )
    keys = keys.sort()
    repeated = keys.filter(keys == keys.shift(1)).unique()
    del keys
    if not repeated.len():
        return {}
    wanted = repeated.implode()
    parts: list[pl.DataFrame] = []
    for index, frame in enumerate(kept):
        candidates = (
            frame.filter(in_window & pl.col("_hash").is_in(wanted))
            .select("_file", "_row", "_hash", "resource_id", "effective")
            .collect(engine="streaming")
        )
        if not candidates.height:
            continue
        raw = scans[index].raw
        names = [name for name in raw.collect_schema().names() if name != "_row"]
        whole = (
            raw.filter(pl.col("_row").is_in(candidates["_row"].implode()))
            .select(
                pl.col("_row").cast(pl.UInt32),
                pl.struct(pl.col(names).cast(pl.String)).hash(seed=7).alias("_whole"),
            )
            .collect(engine="streaming")
        )
        parts.append(candidates.join(whole, on="_row", how="left"))
    ranked = (
        pl.concat(parts)
        .sort("_file", "_row")
        .with_columns(
            pl.col("_file").first().over("_hash", "_whole").alias("_first_file"),
            pl.col("_row").first().over("_hash", "_whole").alias("_first_row"),
            pl.int_range(pl.len()).over("_hash", "_whole").alias("_copy"),
        )
    )
    found: dict[int, dict[int, tuple[str, float]]] = {}
    for row in ranked.filter(pl.col("_copy") > 0).iter_rows(named=True):
        first = f"{scans[row['_first_file']].file.path}:row {row['_first_row']}"
        cost = float(row["effective"]) if row["resource_id"] is None else 0.0
        found.setdefault(int(row["_file"]), {})[int(row["_row"])] = (
            f"exact duplicate of {first}",
            cost,
        )
    return found


def _outliers(
    scans: list[BillingScan], days: pl.DataFrame, limit: datetime, data_end: datetime | None
) -> dict[int, tuple[list[BadRow], int]]:
    """Rows past the outlier limit, per file: the first few as bad rows, and their count."""
    beyond = days.filter(pl.col("day") >= limit).group_by("_file").agg(pl.col("n").sum())
    found: dict[int, tuple[list[BadRow], int]] = {}
    ends = f"{data_end:%Y-%m-%d}" if data_end is not None else "?"
    for index, count in beyond.iter_rows():
        scan = scans[index]
        first = (
            scan.rows.filter(pl.col("_bad").is_null() & (pl.col("end") >= limit))
            .select("_row", "end")
            .head(SAMPLES_PER_FILE)
            .collect(engine="streaming")
        )
        found[index] = (
            [
                BadRow(
                    str(scan.file.path),
                    int(row),
                    f"ChargePeriodEnd {end:%Y-%m-%d} lies more than {OUTLIER_DAYS} days after "
                    f"the rest of the data (which ends {ends}); give --as-of to move the window",
                )
                for row, end in first.iter_rows()
            ],
            int(count),
        )
    return found


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
    files: Sequence[pl.LazyFrame],
    as_of: datetime,
    *,
    has_list_cost: bool,
    has_commitments: bool = False,
    groups: Sequence[Sequence[int]] | None = None,
    sums: _Sums | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per resource: 30- and 7-day costs ending at ``as_of``, attributes, latest tags.

    Returns that frame and the (``_file``, ``_row``) of the tag values that were not JSON
    objects (those resources get no tags from the bill).

    ``files`` are the normalized rows of each file (``ROW_SCHEMA``), in order. Attributes and
    tags come from one row per resource, the last one in file order (for tags, the last one
    that has tags): picking rows by number and fetching them with a filter is several times
    cheaper in time and memory than aggregating millions of strings, and files holding no
    picked row (older months, usually) are not read again at all.

    With ``has_commitments``, every commitment named in CommitmentDiscountId gets a row too
    (see :func:`_commitments`), whether or not it is billed as a resource itself.

    ``groups`` (default: each file alone) are lists of indexes into ``files`` read together:
    each group is aggregated per resource in one streaming pass, and the groups' small
    per-resource tables are combined (sums added, first seen the minimum, last seen and the
    latest row the maximum), so memory follows a group and the resources, not the history.

    ``sums``: what :func:`_sums` returned for these ``files`` and ``groups``, when the caller
    has it already (its tables are taken: it is left empty).
    """
    if groups is None:
        groups = [[index] for index in range(len(files))]
    if sums is None:
        sums = _sums(files, groups, as_of, has_commitments=has_commitments)
    key = (pl.col("_file").cast(pl.UInt64) * (1 << 32) + pl.col("_row").cast(pl.UInt64)).alias(
        "_key"
    )
    good_rows = pl.col("_bad").is_null() & pl.col("resource_id").is_not_null()
    per_file = [frame.filter(good_rows) for frame in files]

    def good(group: Sequence[int]) -> pl.LazyFrame:
        frames = [per_file[index] for index in group] or [pl.LazyFrame(schema=ROW_SCHEMA)]
        return pl.concat(frames, how="vertical").with_columns(key)

    numbers_total, commitments_total = sums.numbers, sums.commitments
    # Consumed: the caller's reference would keep the per-resource table alive to the end.
    sums.numbers, sums.commitments = sums.numbers.clear(), None
    # A filter on a small key set streams; a semi-join materialized every row's strings.
    picked = _rows_by_key(per_file, numbers_total["_latest"], "resource_id", *_ATTRIBUTES, "tags")
    # The ids from the latest rows; sorted while it is narrow: the attributes and tags are
    # then joined in its order, and the wide frame they make is never sorted (a copy of every
    # column at a million rows).
    numbers = (
        numbers_total.join(
            picked.select("_key", "resource_id"),
            left_on="_latest",
            right_on="_key",
            how="left",
            validate="1:1",
        )
        .select(
            "resource_id",
            *[
                pl.when(pl.col("_iops_rows") > 0).then(pl.col(name)).alias(name)
                if name == "iops_cost_30d"
                else pl.col(name)
                for name in _SUMS_SCHEMA
                if name not in ("_id1", "_id2", "_iops_rows")
            ],
        )
        .sort("resource_id")
    )
    del numbers_total
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
        earlier_total: pl.DataFrame | None = None
        for group in groups:
            earlier_part = (
                good(group)
                .filter(pl.col("resource_id").is_in(untagged.implode()))
                .filter(pl.col("tags").is_not_null())
                .group_by("resource_id")
                .agg(pl.col("_key").max())
                .collect(engine="streaming")
            )
            earlier_total = _combined(
                earlier_total, earlier_part, "resource_id", [pl.col("_key").max()]
            )
        earlier = (
            earlier_total
            if earlier_total is not None
            else pl.DataFrame(schema={"resource_id": pl.String, "_key": pl.UInt64})
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
    del picked, tagged
    frame = (
        numbers.drop("_latest")
        .join(attributes, on="resource_id", how="left", maintain_order="left")
        .join(
            tags.filter(~pl.col("_bad_tags")).select("resource_id", "tags_json"),
            on="resource_id",
            how="left",
            maintain_order="left",
        )
    )
    del numbers, attributes
    if not has_list_cost:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("list_cost_30d"))
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.String).alias(name) for name in _COMMITMENT_STRINGS
    ).with_columns(pl.lit(None, dtype=pl.Float64).alias(name) for name in _COMMITMENT_NUMBERS)
    if has_commitments and commitments_total is not None:
        frame = _with_commitments(frame, _commitments(commitments_total))
    bad_tags = tags.filter(pl.col("_bad_tags")).select("_file", "_row").sort("_file", "_row")
    return frame, bad_tags


# A resource is grouped by two 64-bit hashes of its id, not by the id: the running total of a
# million resources was grouped again with every file group's rows, and hashing and copying
# the id text each time was half of the sums' CPU (a 2 M-row group: 0.96 -> 0.63 s). The id is
# taken back from the resource's latest row. Two ids merge only if both hashes collide (one
# chance in 2^128 per pair; the duplicate rows are told apart by two 64-bit hashes too).
_ID_HASHES: Final = (
    pl.when(pl.col("resource_id").is_not_null())
    .then(pl.col("resource_id").hash(seed=0x1D5EED01))
    .alias("_id1"),
    pl.col("resource_id").hash(seed=0x1D5EED02).alias("_id2"),
)


@dataclass
class _Sums:
    """The bill's per-resource sums (``_NUMBERS_COMBINE``'s columns, by ``_ID_HASHES``, without
    the id itself) and per-commitment sums
    (None without commitments); and, when asked for, the ``_hash`` of every row of the window
    (for :func:`_duplicates`, which sorts them)."""

    numbers: pl.DataFrame
    commitments: pl.DataFrame | None
    keys: pl.Series | None = None


_SUMS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "_id1": pl.UInt64(),
    "_id2": pl.UInt64(),
    "cost_30d": pl.Float64(),
    "billed_cost_30d": pl.Float64(),
    "list_cost_30d": pl.Float64(),
    "cost_7d": pl.Float64(),
    "first_seen": UTC_TIME,
    "last_seen": UTC_TIME,
    "_latest": pl.UInt64(),
    "iops_cost_30d": pl.Float64(),
    "_iops_rows": pl.UInt32(),
}


def _sums(
    files: Sequence[pl.LazyFrame],
    groups: Sequence[Sequence[int]],
    as_of: datetime,
    *,
    has_commitments: bool,
    keys: bool = False,
) -> _Sums:
    """The per-resource (and per-commitment) sums of ``files`` (the rows that count, see
    :func:`aggregate_billing`), one streaming read per file group.

    Each group's rows are read once into memory as the columns the sums need (one row per
    billing row), then grouped by resource together with the running total: one group-by per
    group instead of a group-by and a fold of two per-resource tables (at a million
    resources each fold grouped two million ids); and with ``keys`` the window's duplicate
    keys are taken from the same rows instead of another read of the group.
    """
    window_30 = as_of - timedelta(days=30)
    window_7 = as_of - timedelta(days=7)
    in_30 = (pl.col("start") >= window_30) & (pl.col("start") < as_of)
    in_7 = (pl.col("start") >= window_7) & (pl.col("start") < as_of)
    # The IOPS cost is null, not 0, for a resource without an IOPS-priced row ("unknown" is
    # not "free"): hence the count of such rows beside the sum.
    iops = pl.when(in_30 & pl.col("iops_unit")).then(pl.col("effective"))

    def masked(column: str, window: pl.Expr) -> pl.Expr:
        return pl.when(window).then(pl.col(column)).otherwise(0.0)

    # Window masks as columns, then plain sums: filters inside the aggregation cost a third more.
    shaped = [
        *_ID_HASHES,
        masked("effective", in_30).alias("cost_30d"),
        masked("billed", in_30).alias("billed_cost_30d"),
        masked("list", in_30).alias("list_cost_30d"),
        masked("effective", in_7).alias("cost_7d"),
        pl.col("start").alias("first_seen"),
        pl.col("end").alias("last_seen"),
        (pl.col("_file").cast(pl.UInt64) * (1 << 32) + pl.col("_row").cast(pl.UInt64)).alias(
            "_latest"
        ),
        iops.alias("iops_cost_30d"),
        iops.is_not_null().cast(pl.UInt32).alias("_iops_rows"),
    ]
    counted = pl.col("_bad").is_null() & pl.col("resource_id").is_not_null()
    read = counted
    if keys:
        # Rows without a resource are summed nowhere but can be copies too.
        shaped.append(pl.when(in_30).then(pl.col("_hash")).alias("_hash"))
        read = counted | in_30
    numbers = pl.DataFrame(schema=_SUMS_SCHEMA)
    commitments: pl.DataFrame | None = None
    hashes: list[pl.Series] = []
    # Groups' rows waiting to be folded into ``numbers`` (see ``FOLD_ROWS``).
    pending: list[pl.DataFrame] = []
    pending_rows = 0

    def fold() -> pl.DataFrame:
        folded = (
            pl.concat([numbers, *pending], how="vertical_relaxed")
            .lazy()
            .group_by("_id1", "_id2")
            .agg(_NUMBERS_COMBINE)
            .collect(engine="streaming")
        )
        pending.clear()
        return folded

    def read_group(group: Sequence[int]) -> list[pl.DataFrame]:
        rows = pl.concat([files[index] for index in group], how="vertical")
        queries = [rows.filter(read).select(shaped)]
        if has_commitments:
            queries.append(_commitments_query(rows.filter(counted), window_30, as_of))
        return pl.collect_all(queries, engine="streaming")

    # The next group is read while this one is folded into the total: in turn, one waited
    # for the other. Two groups' rows are held at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reclaim-sums") as pool:
        for parts in _read_ahead(pool, read_group, groups):
            if keys:
                hashes.append(parts[0].get_column("_hash").drop_nulls())
                parts[0] = parts[0].filter(pl.col("_id1").is_not_null()).drop("_hash")
            pending.append(parts[0])
            pending_rows += parts[0].height
            if pending_rows >= FOLD_ROWS:
                numbers, pending_rows = fold(), 0
            if has_commitments:
                commitments = _combined(commitments, parts[1], "_commitment", _COMMITMENTS_COMBINE)
            parts.clear()
    if pending:
        numbers = fold()
    if has_commitments and commitments is None:
        commitments = _commitments_query(
            pl.LazyFrame(schema=ROW_SCHEMA), window_30, as_of
        ).collect()
    found = None
    if keys:
        found = pl.concat(hashes) if hashes else pl.Series("_hash", [], pl.UInt64)
    return _Sums(numbers.select(list(_SUMS_SCHEMA)), commitments, found)


_Item = TypeVar("_Item")
_Read = TypeVar("_Read")


def _read_ahead(
    pool: ThreadPoolExecutor, read: Callable[[_Item], _Read], items: Sequence[_Item]
) -> Iterator[_Read]:
    """``read`` of each of ``items`` in order, the next one read by ``pool`` while the caller
    uses the one given."""
    pending = pool.submit(read, items[0]) if items else None
    for index in range(len(items)):
        assert pending is not None
        result = pending.result()
        pending = pool.submit(read, items[index + 1]) if index + 1 < len(items) else None
        yield result
        del result


def _combined(
    total: pl.DataFrame | None, part: pl.DataFrame, key: str, combine: Sequence[pl.Expr]
) -> pl.DataFrame:
    """``total`` with one more group's per-key aggregates folded in by ``combine``.

    In the streaming engine, which spreads the group-by over the cores: at a million
    resources each fold groups two million ids, 3.2 s of CPU in the in-memory engine and
    1.9 s in the streaming one, once per file group.
    """
    if total is None:
        return part
    return (
        pl.concat([total, part], how="vertical_relaxed")
        .lazy()
        .group_by(key)
        .agg(combine)
        .select(total.columns)
        .collect(engine="streaming")
    )


# How one group's per-resource aggregates combine with another's: every aggregate of the
# per-resource pass is a sum, a minimum or a maximum, so combining is exact (sums up to the
# order in which floating-point numbers are added).
_NUMBERS_COMBINE: Final = (
    pl.col("cost_30d").sum(),
    pl.col("billed_cost_30d").sum(),
    pl.col("list_cost_30d").sum(),
    pl.col("cost_7d").sum(),
    pl.col("first_seen").min(),
    pl.col("last_seen").max(),
    pl.col("_latest").max(),
    pl.col("iops_cost_30d").sum(),
    pl.col("_iops_rows").sum(),
)


_COMMITMENT_STRINGS: Final = ("commitment_type", "commitment_category")
_COMMITMENT_NUMBERS: Final = ("commitment_used_30d", "commitment_unused_30d")


def _commitments_query(good: pl.LazyFrame, start: datetime, as_of: datetime) -> pl.LazyFrame:
    """One row per commitment (CommitmentDiscountId): what it covered and what went unused.

    Covered usage is billed on the resources that used it (their rows name the commitment with
    status Used); the unused part is on rows of its own (status Unused), with the commitment
    or nothing as ResourceId. Both are EffectiveCost in the 30-day window, so used / (used +
    unused) is the commitment's utilization over the window. Only rows naming a commitment
    are grouped, by commitment: the memory follows the number of commitments.
    """
    in_window = (pl.col("start") >= start) & (pl.col("start") < as_of)

    def window_cost(status: str) -> pl.Expr:
        return (
            pl.when(in_window & (pl.col("commitment_status") == status))
            .then(pl.col("effective"))
            .otherwise(0.0)
        )

    # Masks as columns and plain sums, min, max: every aggregation streams, so only one row
    # per commitment is held (filters or drop_nulls inside the aggregation held every row).
    # It is collected with the per-resource sums, in the same pass over the files.
    return (
        good.filter(pl.col("commitment_id").is_not_null())
        .select(
            pl.col("commitment_id").alias("_commitment"),
            window_cost("used").alias("commitment_used_30d"),
            window_cost("unused").alias("commitment_unused_30d"),
            "commitment_type",
            "commitment_category",
            "start",
            "end",
            *_OWNED,
        )
        .group_by("_commitment")
        .agg(
            pl.col("commitment_used_30d").sum(),
            pl.col("commitment_unused_30d").sum(),
            # One commitment has one type, category, provider…; max() picks a non-null one.
            pl.col("commitment_type").max(),
            pl.col("commitment_category").max(),
            pl.col("start").min().alias("_first"),
            pl.col("end").max().alias("_last"),
            *[pl.col(name).max().alias(f"_{name}") for name in _OWNED],
        )
    )


def _commitments(grouped: pl.DataFrame) -> pl.DataFrame:
    """The commitments of :func:`_commitments_query`, ids and attributes cleaned."""
    return (
        grouped.with_columns(
            clean_text(pl.col("_commitment")).alias("_commitment"),
            clean_text(pl.col("commitment_type")).alias("commitment_type"),
            clean_text(pl.col("commitment_category"))
            .str.to_lowercase()
            .alias("commitment_category"),
            *[clean_text(pl.col(f"_{name}")).alias(f"_{name}") for name in _OWNED],
        )
        .filter(pl.col("_commitment").is_not_null())
        # Ids equal once cleaned (a stray space) are one commitment.
        .group_by("_commitment")
        .agg(
            pl.col("commitment_used_30d").sum(),
            pl.col("commitment_unused_30d").sum(),
            pl.col("commitment_type").max(),
            pl.col("commitment_category").max(),
            pl.col("_first").min(),
            pl.col("_last").max(),
            *[pl.col(f"_{name}").max() for name in _OWNED],
        )
        .rename({"_commitment": "resource_id"})
    )


# What a commitment billed on no row of its own takes from the rows that name it.
_OWNED: Final = ("provider", "billing_account_id", "currency", "region")

_COMMITMENTS_COMBINE: Final = (
    pl.col("commitment_used_30d").sum(),
    pl.col("commitment_unused_30d").sum(),
    pl.col("commitment_type").max(),
    pl.col("commitment_category").max(),
    pl.col("_first").min(),
    pl.col("_last").max(),
    *[pl.col(f"_{name}").max() for name in _OWNED],
)


def _with_commitments(frame: pl.DataFrame, commitments: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (sorted by resource) with the commitments' figures; a commitment not billed as
    a resource is added (costs 0: its unused part, when on rows without ResourceId, is
    unattributed cost).

    Only the few rows of commitments are joined; they are then written over their rows in
    place, column by column. A full join of the whole frame and a sort of the result held
    three copies of the bill's per-resource table at once: the peak of the collection at a
    million resources.
    """
    if not commitments.height:
        return frame
    ids = commitments.get_column("resource_id").implode()
    positions = frame.select(
        pl.arg_where(pl.col("resource_id").is_in(ids)).alias("_position")
    ).get_column("_position")
    merged = _commitments_joined(frame[positions], commitments)
    billed = merged.filter(pl.col("resource_id").is_in(frame["resource_id"][positions].implode()))
    columns: list[pl.Series] = []
    for name in frame.columns:
        column = frame.get_column(name)
        value = billed.get_column(name)
        if positions.len() and not column.gather(positions).equals(value, null_equal=True):
            column = column.clone().scatter(positions, value)
        columns.append(column)
    updated = pl.DataFrame(columns)
    del columns
    added = merged.filter(~pl.col("resource_id").is_in(billed["resource_id"].implode()))
    if not added.height:
        return updated
    return updated.merge_sorted(added, key="resource_id")


def _commitments_joined(frame: pl.DataFrame, commitments: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` full-joined with ``commitments`` (see ``_with_commitments``)."""
    joined = frame.drop(*_COMMITMENT_STRINGS, *_COMMITMENT_NUMBERS).join(
        commitments, on="resource_id", how="full", coalesce=True
    )
    return (
        joined.with_columns(
            *[
                pl.coalesce(
                    pl.col(name),
                    pl.col(f"_{name}").str.to_lowercase()
                    if name in ("provider", "region")
                    else pl.col(f"_{name}").str.to_uppercase()
                    if name == "currency"
                    else pl.col(f"_{name}"),
                ).alias(name)
                for name in _OWNED
            ],
            pl.coalesce("resource_type", "commitment_type").alias("resource_type"),
            pl.coalesce("first_seen", "_first").alias("first_seen"),
            pl.coalesce("last_seen", "_last").alias("last_seen"),
            *[pl.col(name).fill_null(0.0) for name in ("cost_30d", "billed_cost_30d", "cost_7d")],
        )
        .drop("_first", "_last", *[f"_{name}" for name in _OWNED])
        .select(frame.columns)
        .sort("resource_id")
    )


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
    frames: list[pl.DataFrame] = [_own_text(part.collect(engine="streaming")) for part in parts]
    return pl.concat(frames, how="vertical")


def _own_text(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its text copied out of the buffers of the file it was filtered from.

    A filtered string column is made of views into the file's decoded pages, which stay
    alive while one view points into them: over 13 months at a million resources, the latest
    rows of resources stopped on other days (a few thousand per file) held ~70 MB of each of
    ~100 files, 5 GiB in all. Copying through Arrow IPC keeps only the rows' own bytes (about
    half a second per million rows); casts, ``rechunk`` and ``shrink_to_fit`` keep the views.
    """
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    buffer.seek(0)
    return pl.read_ipc(buffer)


def _empty_per_resource() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "resource_id": pl.String(),
        **{name: pl.String() for name in _ATTRIBUTES},
    }
    schema.update(
        {
            # The sums' columns, less the id and the columns only the sums need.
            **{
                name: dtype
                for name, dtype in _SUMS_SCHEMA.items()
                if name != "resource_id" and not name.startswith("_")
            },
            "tags_json": pl.String(),
            **{name: pl.String() for name in _COMMITMENT_STRINGS},
            **{name: pl.Float64() for name in _COMMITMENT_NUMBERS},
        }
    )
    return pl.DataFrame(schema=schema)
