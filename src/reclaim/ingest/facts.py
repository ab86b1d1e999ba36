"""The per-resource facts table: the one contract between every collector and the rules.

Every collector (FOCUS billing files, inventory and utilization files, AWS through boto3)
produces the same table: one row per resource, one column per fact in ``FACT_COLUMNS``, with
the Polars dtype of ``FACT_SCHEMA``. Savings rules read these columns by name, so a name here
is public API: adding a column is fine, renaming or retyping one breaks users' rule files.

Conventions every column follows:

- A fact that no source told us is null, never a made-up default (``attached`` is null for a
  resource the inventory does not describe; ``cpu_avg`` is null without metric samples).
  Rules should guard with ``is not null`` where the difference matters.
- Money is a float in ``currency`` (the bill's ``BillingCurrency``). Negative amounts are
  legitimate: credits and refunds.
- Times are ``Datetime("us", "UTC")``. Durations (``age_days`` and friends) are days as floats,
  measured back from ``as_of``, the end of the collected data (not the wall clock), so a
  collection means the same thing whenever the rules run over it.
- Percentages (``cpu_*``, ``mem_*``) are 0 to 100.
- ``tags`` is a ``Struct`` with one ``String`` field per tag key seen anywhere in the
  collection; a resource without that key has null there. Its fields therefore differ between
  collections: ``FACT_SCHEMA`` gives it as an empty ``Struct`` and ``validate_facts`` accepts
  any ``Struct`` of strings.

``FIELD_TYPES`` maps each column to the rules engine's field types ("number", "integer",
"string", "boolean", "datetime", "map", "list") so the savings pack can be type-checked
against this table before anything runs.
"""

from __future__ import annotations

__all__ = [
    "FACTS",
    "FACT_COLUMNS",
    "FACT_SCHEMA",
    "FIELD_TYPES",
    "KINDS",
    "Fact",
    "conform_facts",
    "empty_facts",
    "read_facts_parquet",
    "validate_facts",
    "write_facts_parquet",
]

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import polars as pl

from reclaim.errors import ConfigError

UTC_TIME: Final = pl.Datetime("us", "UTC")

KINDS: Final[tuple[str, ...]] = (
    "vm",
    "volume",
    "snapshot",
    "ip_address",
    "load_balancer",
    "database",
    "bucket",
    "commitment",
    "other",
)
"""Values of the ``kind`` column: a provider-neutral class of resource that rules select on."""


@dataclass(frozen=True)
class Fact:
    """One column of the facts table: its name, Polars dtype, rules field type and meaning."""

    name: str
    dtype: pl.DataType
    field_type: str
    doc: str


_S = pl.String()
_F = pl.Float64()
_B = pl.Boolean()
_I32 = pl.Int32()
_I64 = pl.Int64()

_FACTS: Final[tuple[Fact, ...]] = (
    # --- identity -------------------------------------------------------------------------------
    Fact(
        "resource_id", _S, "string", "Provider's id of the resource (FOCUS ResourceId); never null."
    ),
    Fact("resource_name", _S, "string", "Display name (FOCUS ResourceName or the Name tag)."),
    Fact(
        "kind",
        _S,
        "string",
        "Provider-neutral class: vm, volume, snapshot, ip_address, load_balancer, database, "
        "bucket, commitment (Savings Plan, reservation) or other. Derived from inventory type,"
        " else from the bill's ResourceType/service.",
    ),
    Fact(
        "resource_type",
        _S,
        "string",
        "Provider's type as given (FOCUS ResourceType, inventory type).",
    ),
    Fact(
        "provider",
        _S,
        "string",
        "Lower-case provider (aws, microsoft, …): FOCUS ServiceProviderName or ProviderName.",
    ),
    Fact(
        "account_id", _S, "string", "Account/subscription/project holding it (FOCUS SubAccountId)."
    ),
    Fact("account_name", _S, "string", "Its name (FOCUS SubAccountName)."),
    Fact("billing_account_id", _S, "string", "Account that pays (FOCUS BillingAccountId)."),
    Fact(
        "service",
        _S,
        "string",
        "Service name (FOCUS ServiceName), e.g. 'Amazon Elastic Compute Cloud'.",
    ),
    Fact(
        "service_category", _S, "string", "FOCUS ServiceCategory, e.g. Compute, Storage, Databases."
    ),
    Fact("region", _S, "string", "Region id (FOCUS RegionId), e.g. us-east-1."),
    # --- cost (from the bill, over the 30 days ending at as_of) ---------------------------------
    Fact(
        "cost_30d",
        _F,
        "number",
        "Sum of EffectiveCost over the last 30 days of the data (amortized, after discounts);"
        " 0 when not billed in the window.",
    ),
    Fact(
        "billed_cost_30d",
        _F,
        "number",
        "Sum of BilledCost over the same 30 days (what the invoice shows).",
    ),
    Fact(
        "list_cost_30d",
        _F,
        "number",
        "Sum of ListCost over the same 30 days (public price); null if the bill lacks ListCost.",
    ),
    Fact(
        "cost_7d",
        _F,
        "number",
        "Sum of EffectiveCost over the last 7 days: the current run rate, to see savings land.",
    ),
    Fact("currency", _S, "string", "FOCUS BillingCurrency of the amounts above."),
    Fact(
        "first_seen",
        UTC_TIME,
        "datetime",
        "Earliest ChargePeriodStart of the resource in all collected billing data.",
    ),
    Fact(
        "last_seen",
        UTC_TIME,
        "datetime",
        "Latest ChargePeriodEnd of the resource in all collected billing data.",
    ),
    Fact("in_bill", _B, "boolean", "The resource has billing rows in the collected data."),
    Fact(
        "iops_cost_30d",
        _F,
        "number",
        "EffectiveCost over the 30 days of the resource's rows priced per IOPS (PricingUnit or"
        " ConsumedUnit naming IOPS, e.g. IOPS-Mo): the provisioned-IOPS part of a volume's cost;"
        " null when the bill has no such row for it.",
    ),
    # --- commitments (Savings Plans, reservations: FOCUS CommitmentDiscount* columns) ----------
    Fact(
        "commitment_type",
        _S,
        "string",
        "For a commitment: FOCUS CommitmentDiscountType as given (e.g. 'Savings Plan',"
        " 'Reserved Instance').",
    ),
    Fact(
        "commitment_category",
        _S,
        "string",
        "For a commitment: FOCUS CommitmentDiscountCategory, lower case: spend or usage.",
    ),
    Fact(
        "commitment_used_30d",
        _F,
        "number",
        "For a commitment: EffectiveCost over the 30 days of the usage it covered (rows naming"
        " it in CommitmentDiscountId with CommitmentDiscountStatus 'Used').",
    ),
    Fact(
        "commitment_unused_30d",
        _F,
        "number",
        "For a commitment: EffectiveCost over the 30 days of its unused part (rows naming it"
        " with CommitmentDiscountStatus 'Unused'): paid for and covering nothing.",
    ),
    # --- ownership ------------------------------------------------------------------------------
    Fact(
        "tags",
        pl.Struct([]),
        "map",
        "Tags: one String field per tag key of the collection; missing key is null.",
    ),
    Fact(
        "tag_count",
        _I32,
        "integer",
        "Number of non-null tags the resource carries (0 when untagged).",
    ),
    Fact(
        "owner",
        _S,
        "string",
        "Value of the first owner-like tag (owner, team, …, any case); null when unowned.",
    ),
    # --- inventory attributes -------------------------------------------------------------------
    Fact(
        "in_inventory", _B, "boolean", "An inventory source (file or AWS) described the resource."
    ),
    Fact(
        "state", _S, "string", "Lower-case lifecycle state: running, stopped, available, in-use, …"
    ),
    Fact("instance_type", _S, "string", "Size of a VM or database, e.g. m5.xlarge, db.r5.large."),
    Fact("family", _S, "string", "Instance family, e.g. m5 (for db.r5.large: r5)."),
    Fact("size", _S, "string", "Size within the family, e.g. xlarge."),
    Fact(
        "platform",
        _S,
        "string",
        "Lower-case operating system or platform of a VM (linux, windows, red hat enterprise"
        " linux, …) as the inventory gives it; null when unknown.",
    ),
    Fact(
        "size_down",
        _S,
        "string",
        "The next smaller instance type of the same family; null at the bottom or if unknown.",
    ),
    Fact(
        "size_down_ratio",
        _F,
        "number",
        "Capacity (and so roughly price) of size_down over the current size, e.g. 0.5.",
    ),
    Fact(
        "previous_generation",
        _B,
        "boolean",
        "The family is a previous generation (m4, c4, r4, t2, …); null if not a VM/database.",
    ),
    Fact(
        "attached",
        _B,
        "boolean",
        "Volume attached to an instance, IP associated, load balancer with targets.",
    ),
    Fact(
        "attached_to",
        _S,
        "string",
        "Id of what it is attached to (instance id for volumes and IPs).",
    ),
    Fact("attached_volume_count", _I32, "integer", "For VMs: number of volumes attached to it."),
    Fact("attached_volume_gb", _F, "number", "For VMs: total GiB of the volumes attached to it."),
    Fact("volume_type", _S, "string", "Lower-case volume type: gp2, gp3, io1, st1, standard, …"),
    Fact(
        "size_gb",
        _F,
        "number",
        "Provisioned size in GiB (volume, snapshot, database storage, bucket bytes/2^30).",
    ),
    Fact(
        "provisioned_iops",
        _F,
        "number",
        "For volumes: IOPS provisioned (io1, io2, gp3; gp3 includes 3,000); null when unknown.",
    ),
    Fact("target_count", _I32, "integer", "For load balancers: registered targets."),
    Fact("engine", _S, "string", "For databases: engine (postgres, mysql, …)."),
    Fact(
        "lifecycle_policy",
        _B,
        "boolean",
        "For buckets: a lifecycle (expiry/transition) policy exists.",
    ),
    Fact("source_volume_id", _S, "string", "For snapshots: the volume it was taken from."),
    Fact(
        "used_by_image", _B, "boolean", "For snapshots: a registered machine image (AMI) uses it."
    ),
    Fact("created_at", UTC_TIME, "datetime", "Creation (launch) time."),
    Fact(
        "last_attached_at",
        UTC_TIME,
        "datetime",
        "Last time it was attached/associated (inventory), for detached resources.",
    ),
    Fact(
        "state_changed_at",
        UTC_TIME,
        "datetime",
        "When it entered its current state (e.g. stopped).",
    ),
    Fact("age_days", _F, "number", "Days from created_at to as_of."),
    Fact(
        "days_since_attached",
        _F,
        "number",
        "0 when attached; else days from last_attached_at (or created_at if never attached)"
        " to as_of.",
    ),
    Fact("days_in_state", _F, "number", "Days from state_changed_at to as_of."),
    # --- utilization (metric samples over the window) -------------------------------------------
    Fact("cpu_avg", _F, "number", "Mean CPU utilization, percent."),
    Fact("cpu_p95", _F, "number", "95th percentile CPU utilization, percent."),
    Fact("cpu_max", _F, "number", "Maximum CPU utilization, percent."),
    Fact("mem_avg", _F, "number", "Mean memory utilization, percent."),
    Fact("mem_p95", _F, "number", "95th percentile memory utilization, percent."),
    Fact("mem_max", _F, "number", "Maximum memory utilization, percent."),
    Fact("network_avg", _F, "number", "Mean network traffic in and out, bytes per second."),
    Fact("network_p95", _F, "number", "95th percentile network traffic, bytes per second."),
    Fact("network_max", _F, "number", "Maximum network traffic, bytes per second."),
    Fact("iops_avg", _F, "number", "Mean I/O operations per second (volumes; read + write)."),
    Fact("iops_p95", _F, "number", "95th percentile I/O operations per second."),
    Fact("iops_max", _F, "number", "Maximum I/O operations per second."),
    Fact(
        "requests_sum", _F, "number", "Requests served over the window (load balancers, buckets)."
    ),
    Fact("connections_avg", _F, "number", "Mean open connections (databases)."),
    Fact("connections_max", _F, "number", "Maximum open connections (databases)."),
    Fact("samples", _I64, "integer", "Metric samples seen for the resource (0 when none)."),
    Fact(
        "metric_days",
        _F,
        "number",
        "Days between its first and last metric sample (how much history the metrics cover).",
    ),
    # --- provenance -----------------------------------------------------------------------------
    Fact(
        "as_of",
        UTC_TIME,
        "datetime",
        "End of the collected data; every *_days and *_30d fact is measured back from it.",
    ),
)

FACT_COLUMNS: Final[tuple[str, ...]] = tuple(fact.name for fact in _FACTS)
"""Column names of the facts table, in order."""

FACT_SCHEMA: Final[Mapping[str, pl.DataType]] = {fact.name: fact.dtype for fact in _FACTS}
"""Column name → Polars dtype (``tags`` is any Struct of String fields)."""

FIELD_TYPES: Final[Mapping[str, str]] = {fact.name: fact.field_type for fact in _FACTS}
"""Column name → rules engine field type: number, integer, string, boolean, datetime, map, list."""

FACTS: Final[Mapping[str, Fact]] = {fact.name: fact for fact in _FACTS}


def empty_facts() -> pl.DataFrame:
    """A facts table with every column and no row."""
    return pl.DataFrame(schema=dict(FACT_SCHEMA))


def conform_facts(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Add every missing fact column as nulls, cast to the contract dtypes, order the columns.

    Columns outside the contract are dropped. ``tags`` keeps its fields (cast to String).
    """
    lazy = frame.lazy()
    present = lazy.collect_schema()
    exprs: list[pl.Expr] = []
    for name, dtype in FACT_SCHEMA.items():
        if name == "tags":
            exprs.append(_tags_expr(present.get("tags")))
        elif name in present:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return lazy.select(exprs)


def _tags_expr(dtype: pl.DataType | None) -> pl.Expr:
    if isinstance(dtype, pl.Struct):
        fields = [pl.Field(field.name, pl.String()) for field in dtype.fields]
        return pl.col("tags").cast(pl.Struct(fields), strict=False)
    return pl.lit(None, dtype=pl.Struct([])).alias("tags")


def validate_facts(frame: pl.DataFrame) -> None:
    """Raise ``ConfigError`` naming the first column that breaks the contract."""
    schema = frame.schema
    for name, dtype in FACT_SCHEMA.items():
        if name not in schema:
            raise ConfigError(
                f"facts table lacks column {name!r}",
                fix="build facts with reclaim.ingest (conform_facts adds missing columns as null)",
            )
        actual = schema[name]
        if name == "tags":
            ok = isinstance(actual, pl.Struct) and all(
                field.dtype == pl.String() for field in actual.fields
            )
        else:
            ok = actual == dtype
        if not ok:
            raise ConfigError(
                f"facts column {name!r} has dtype {actual}, expected {dtype}",
                fix="cast it, or build facts with reclaim.ingest.conform_facts",
            )
    if frame.height and frame["resource_id"].null_count():
        raise ConfigError(
            "facts column 'resource_id' has nulls", fix="every fact row needs a resource"
        )
    if frame.height != frame["resource_id"].n_unique():
        raise ConfigError(
            "facts table has more than one row for a resource_id",
            fix="aggregate per resource before building facts",
        )


def write_facts_parquet(facts: pl.DataFrame, target: str | Path | IO[bytes]) -> None:
    """Write a facts table to Parquet; ``read_facts_parquet`` gives the same table back.

    Parquet cannot hold a Struct without fields, which is what ``tags`` is when no resource has
    a tag: the column is left out then, and ``read_facts_parquet`` puts it back.
    """
    dtype = facts.schema.get("tags")
    if isinstance(dtype, pl.Struct) and not dtype.fields:
        facts = facts.drop("tags")
    facts.write_parquet(target, compression="zstd")


def read_facts_parquet(
    source: str | Path | IO[bytes], columns: Collection[str] | None = None
) -> pl.DataFrame:
    """Read a facts table written by ``write_facts_parquet`` (or any Parquet of fact columns).

    With ``columns``, only those fact columns (in contract order; the Parquet's others are
    not read).
    """
    if columns is None:
        return conform_facts(pl.read_parquet(source)).collect()
    wanted = [name for name in FACT_SCHEMA if name in columns]
    return conform_facts(pl.scan_parquet(source)).select(wanted).collect()
