"""A synthetic estate: FOCUS billing Parquet, an inventory and utilization, with real waste.

Seeded and deterministic: the same ``resources``, ``days`` and ``seed`` give byte-identical
files, because every value comes from one ``numpy`` generator and the dates are fixed (the data
ends at ``SAMPLE_END``, not at the wall clock). Generation is vectorised; billing rows are
written in parts of at most ``rows_per_part`` rows, so ten million rows never sit in memory at
once (a folder of parts is also what provider exports look like).

The mix of waste triggers every built-in savings rule: idle VMs, VMs one size too big,
previous-generation families, VMs stopped for long with volumes attached, unattached volumes,
gp2 volumes, old snapshots, unassociated elastic IPs, idle load balancers, idle databases,
resources without an owner tag, buckets without a lifecycle policy, io1 and gp3 volumes with
provisioned IOPS far above their peak, and a Savings Plan used at 60% (the billing carries its
fee, its unused part and the usage it covers, in FOCUS CommitmentDiscount* columns; commitments
are billing entities beyond ``resources``). The first resources of each kind are forced into
each waste case, so even a tiny sample has every case (and databases one size too big, for the
pack's thirteenth rule).

What was added for IOPS, platform and commitments draws from a second generator seeded from
``seed``, so everything the first one made stays as it was.
"""

from __future__ import annotations

__all__ = ["BUNDLED_SAMPLE", "SAMPLE_END", "SampleFiles", "bundled_sample", "generate_sample"]

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from reclaim.errors import ConfigError

SAMPLE_END: Final = datetime(2026, 11, 1, tzinfo=UTC)

_KIND_SHARE: Final = (
    ("vm", 0.40),
    ("volume", 0.25),
    ("snapshot", 0.12),
    ("ip_address", 0.04),
    ("load_balancer", 0.04),
    ("database", 0.06),
    ("bucket", 0.09),
)
_SERVICES: Final = {
    "vm": ("Amazon Elastic Compute Cloud", "Compute", "Instance"),
    "volume": ("Amazon Elastic Compute Cloud", "Storage", "Volume"),
    "snapshot": ("Amazon Elastic Compute Cloud", "Storage", "Snapshot"),
    "ip_address": ("Amazon Virtual Private Cloud", "Networking", "Elastic IP"),
    "load_balancer": ("Elastic Load Balancing", "Networking", "Load Balancer"),
    "database": ("Amazon Relational Database Service", "Databases", "DB Instance"),
    "bucket": ("Amazon Simple Storage Service", "Storage", "Bucket"),
}
_CURRENT_FAMILIES: Final = ("m5", "c5", "r5", "t3", "m6i", "c6i")
_OLD_FAMILIES: Final = ("m4", "c4", "r4", "t2")
_SIZES: Final = ("large", "xlarge", "2xlarge", "4xlarge")
_SIZE_UNITS: Final = (4.0, 8.0, 16.0, 32.0)
_REGIONS: Final = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
_TEAMS: Final = ("payments", "search", "platform", "data", "mobile", "growth", "identity", "ml")
_ENVS: Final = ("prod", "staging", "dev")
_ACCOUNTS: Final = 12
_SAMPLE_RATE_PER_DAY: Final = 4

Progress = Callable[[str], None]

BUNDLED_SAMPLE: Final = {"resources": 120, "days": 35, "seed": 7}
"""How ``sample_data/`` (shipped in the package, for ``make demo``) was generated."""


@dataclass(frozen=True)
class SampleFiles:
    billing: Path
    """A folder of FOCUS 1.2 Parquet parts."""
    inventory: Path
    utilization: Path
    resources: int
    billing_rows: int


def generate_sample(
    out: Path | str,
    *,
    resources: int = 200,
    days: int = 45,
    seed: int = 7,
    table_format: str = "csv",
    rows_per_part: int = 2_000_000,
    progress: Progress | None = None,
) -> SampleFiles:
    """Write ``billing/part-*.parquet``, ``inventory.<fmt>`` and ``utilization.<fmt>`` to ``out``.

    ``table_format`` is ``csv`` or ``parquet`` for the inventory and utilization tables.
    """
    if resources < 1 or days < 1:
        raise ConfigError("resources and days must be at least 1", fix="pass positive numbers")
    if table_format not in ("csv", "parquet"):
        raise ConfigError(f"unknown table format {table_format!r}", fix="use csv or parquet")
    out = Path(out)
    (out / "billing").mkdir(parents=True, exist_ok=True)
    for old in (out / "billing").glob("part-*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 14])
    if progress:
        progress(f"inventing {resources:,} resources")
    estate = _with_iops_platform_commitments(extra, _estate(rng, resources))
    inventory_path = out / f"inventory.{table_format}"
    _write(_inventory(estate), inventory_path)
    if progress:
        progress("writing utilization samples")
    utilization_path = out / f"utilization.{table_format}"
    utilization = _utilization(rng, estate, days)
    _write(
        pl.concat([utilization, _iops_utilization(extra, estate, days)], how="diagonal"),
        utilization_path,
    )
    rows = _billing(rng, estate, days, out / "billing", rows_per_part, progress)
    return SampleFiles(out / "billing", inventory_path, utilization_path, resources, rows)


def _write(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%SZ")
    else:
        frame.write_parquet(path, compression="zstd", statistics=True)


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> np.ndarray:
    choices: np.ndarray = np.asarray(values, dtype=object)
    return choices[rng.integers(0, len(values), n)]


def _force(flags: np.ndarray, mask: np.ndarray, first: int) -> None:
    """Turn on the flag for the first ``first`` members of ``mask`` (every case in tiny samples)."""
    where = np.flatnonzero(mask)[:first]
    flags[where] = True


def _estate(rng: np.random.Generator, n: int) -> pl.DataFrame:
    shares = np.array([share for _, share in _KIND_SHARE])
    kinds = np.asarray([kind for kind, _ in _KIND_SHARE], dtype=object)
    # Guarantee at least a few of each kind, then draw the rest by share.
    base = np.repeat(kinds, 3)[:n]
    rest = kinds[rng.choice(len(kinds), size=max(n - base.size, 0), p=shares / shares.sum())]
    kind = np.concatenate([base, rest])
    index = np.arange(n)
    is_ = {k: kind == k for k in kinds}

    def waste(k: str, share: float, first: int = 1, among: np.ndarray | None = None) -> np.ndarray:
        pool = is_[k] if among is None else (is_[k] & among)
        flags: np.ndarray = pool & (rng.random(n) < share)
        _force(flags, pool, first)
        return flags

    vm = is_["vm"]
    vm_order = np.cumsum(vm) - 1  # position among VMs, so forced cases differ per VM
    idle = waste("vm", 0.08, among=vm_order == 0) | (vm & (rng.random(n) < 0.08))
    oversized = vm & ~idle & (rng.random(n) < 0.15)
    _force(oversized, vm & (vm_order == 1), 1)
    stopped = vm & ~idle & ~oversized & (rng.random(n) < 0.05)
    _force(stopped, vm & (vm_order == 2), 1)
    old_family = vm & (rng.random(n) < 0.10)
    _force(old_family, vm & (vm_order == 3), 1)
    families = np.where(old_family, _pick(rng, _OLD_FAMILIES, n), _pick(rng, _CURRENT_FAMILIES, n))
    size_index = rng.integers(0, len(_SIZES), n)
    size_index = np.where(oversized & (size_index == 0), 1, size_index)
    sizes = np.asarray(_SIZES, dtype=object)[size_index]
    units = np.asarray(_SIZE_UNITS)[size_index]

    vol = is_["volume"]
    unattached = waste("volume", 0.15)
    gp2 = vol & (rng.random(n) < 0.30)
    _force(gp2, vol & ~unattached, 1)
    snap_old = waste("snapshot", 0.45)
    ip_free = waste("ip_address", 0.40)
    lb_idle = waste("load_balancer", 0.25)
    db_idle = waste("database", 0.15)
    db_oversized = is_["database"] & ~db_idle & (rng.random(n) < 0.2)
    _force(db_oversized, is_["database"] & ~db_idle, 1)
    bucket_nolc = waste("bucket", 0.5)
    unowned = rng.random(n) < 0.08
    _force(unowned, np.ones(n, dtype=bool), 1)

    account = rng.integers(0, _ACCOUNTS, n)
    region = _pick(rng, _REGIONS, n)
    team = _pick(rng, _TEAMS, n)
    env = _pick(rng, _ENVS, n)
    age = rng.uniform(40, 900, n)
    age = np.where(
        snap_old, rng.uniform(200, 1200, n), np.where(is_["snapshot"], rng.uniform(1, 80, n), age)
    )
    size_gb = np.where(is_["bucket"], rng.uniform(10, 20_000, n), np.round(rng.uniform(8, 1000, n)))
    frame = pl.DataFrame(
        {
            "i": index,
            "kind": kind.astype(str),
            "family": families.astype(str),
            "size": sizes.astype(str),
            "units": units,
            "account": account,
            "region": region.astype(str),
            "team": team.astype(str),
            "env": env.astype(str),
            "age_days": age,
            "size_gb": size_gb,
            "idle": idle,
            "oversized": oversized,
            "stopped": stopped,
            "unattached": unattached,
            "gp2": gp2,
            "snap_old": snap_old,
            "ip_free": ip_free,
            "lb_idle": lb_idle,
            "db_idle": db_idle,
            "db_oversized": db_oversized,
            "bucket_nolc": bucket_nolc,
            "unowned": unowned,
            "stopped_days": rng.uniform(35, 200, n),
            "detached_days": rng.uniform(31, 300, n),
            "used_by_image": rng.random(n) < 0.1,
            "noise": rng.uniform(0.9, 1.1, n),
        }
    )
    hex_id = pl.col("i").cast(pl.String).str.zfill(12)
    acct = (pl.lit("1000000000") + pl.col("account").cast(pl.String).str.zfill(2)).alias("acct")
    frame = frame.with_columns(acct, hex_id.alias("hex"))
    rid = (
        pl.when(pl.col("kind") == "vm")
        .then(pl.lit("i-0") + pl.col("hex"))
        .when(pl.col("kind") == "volume")
        .then(pl.lit("vol-0") + pl.col("hex"))
        .when(pl.col("kind") == "snapshot")
        .then(pl.lit("snap-0") + pl.col("hex"))
        .when(pl.col("kind") == "ip_address")
        .then(pl.lit("eipalloc-0") + pl.col("hex"))
        .when(pl.col("kind") == "load_balancer")
        .then(
            pl.format(
                "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/app/lb-{}/{}",
                "region",
                "acct",
                "i",
                "hex",
            )
        )
        .when(pl.col("kind") == "database")
        .then(pl.format("arn:aws:rds:{}:{}:db:db-{}", "region", "acct", "i"))
        .otherwise(pl.format("arn:aws:s3:::bucket-{}-{}", "team", "i"))
    )
    instance_type = (
        pl.when(pl.col("kind") == "vm")
        .then(pl.format("{}.{}", "family", "size"))
        .when(pl.col("kind") == "database")
        .then(pl.format("db.{}.{}", "family", "size"))
        .otherwise(None)
    )
    tags = (
        pl.when(pl.col("unowned"))
        .then(pl.concat_str(pl.lit('{"env": "'), "env", pl.lit('"}')))
        .otherwise(
            pl.concat_str(
                pl.lit('{"owner": "'),
                "team",
                pl.lit('", "env": "'),
                "env",
                pl.lit('", "app": "app-'),
                pl.col("i").cast(pl.String),
                pl.lit('"}'),
            )
        )
    )
    return frame.with_columns(
        rid.alias("resource_id"),
        instance_type.alias("instance_type"),
        tags.alias("tags"),
        _daily_cost().alias("daily_cost"),
    )


SAVINGS_PLAN_RATE: Final = 0.72
"""EffectiveCost of covered usage over its on-demand cost (a 1-year compute plan's ~28%)."""

_UNDERUSED_PLAN_UTILIZATION: Final = 0.6
_WELL_USED_PLAN_UTILIZATION: Final = 0.93
_VMS_PER_PLAN: Final = 500


def _with_iops_platform_commitments(rng: np.random.Generator, estate: pl.DataFrame) -> pl.DataFrame:
    """Volume IOPS (io1, gp3 above its free 3,000), VM platforms and Savings Plan coverage."""
    n = estate.height
    kind = estate["kind"].to_numpy()
    volume = (kind == "volume") & ~estate["gp2"].to_numpy()
    attached = volume & ~estate["unattached"].to_numpy()
    io1 = volume & (rng.random(n) < 0.10)
    _force(io1, attached, 1)
    fast_gp3 = volume & ~io1 & (rng.random(n) < 0.10)
    _force(fast_gp3, attached & ~io1, 1)
    provisioned = np.where(
        io1,
        np.round(rng.uniform(20, 160, n)) * 100,
        np.where(fast_gp3, np.round(rng.uniform(40, 120, n)) * 100, 3000.0),
    )
    over = (io1 | fast_gp3) & (rng.random(n) < 0.5)
    _force(over, io1 & attached, 1)
    _force(over, fast_gp3 & attached, 1)
    peak_share = np.where(over, rng.uniform(0.05, 0.3, n), rng.uniform(0.6, 0.9, n))
    iops_month = np.where(
        io1, provisioned * 0.065, np.where(fast_gp3, (provisioned - 3000) * 0.005, 0.0)
    )
    vms = kind == "vm"
    windows = vms & (rng.random(n) < 0.10)
    _force(windows, vms & (np.cumsum(vms) == vms.sum()), 1)  # the last VM, at least
    vm_ok = (kind == "vm") & ~estate["stopped"].to_numpy() & ~estate["idle"].to_numpy()
    prod = estate["env"].to_numpy() == "prod"
    covered = vm_ok & prod & (rng.random(n) < 0.5)
    _force(covered, vm_ok & prod, 2)
    plans = max(1, int(covered.sum()) // _VMS_PER_PLAN)
    plan = np.where(covered, np.cumsum(covered) % plans, -1)
    return estate.with_columns(
        pl.Series("volume_type", ["io1" if flag else None for flag in io1], dtype=pl.String),
        pl.Series(
            "provisioned_iops", np.where(io1 | fast_gp3 | volume, provisioned, np.nan)
        ).fill_nan(None),
        pl.Series("iops_peak", np.where(io1 | fast_gp3, provisioned * peak_share, np.nan)).fill_nan(
            None
        ),
        pl.Series("iops_daily", np.where(iops_month > 0, iops_month / 30, np.nan)).fill_nan(None),
        pl.Series(
            "platform",
            [
                ("Windows" if win else "Linux/UNIX") if vm else None
                for vm, win in zip(vms, windows, strict=True)
            ],
            dtype=pl.String,
        ),
        pl.Series("plan", plan, dtype=pl.Int32),
    ).with_columns(
        # io1 storage is dearer than gp3's (its IOPS are billed on rows of their own).
        pl.when(pl.col("volume_type") == "io1")
        .then(pl.col("daily_cost") * 0.125 / 0.08)
        .otherwise(pl.col("daily_cost"))
        .alias("daily_cost")
    )


def _plan_id(plan: pl.Expr) -> pl.Expr:
    return pl.format("arn:aws:savingsplans::1000000000:savingsplan/sp-{}", plan.cast(pl.String))


def _plans(estate: pl.DataFrame) -> pl.DataFrame:
    """Each Savings Plan's daily commitment: what its VMs cost under it / its utilization."""
    return (
        estate.filter(pl.col("plan") >= 0)
        .group_by("plan")
        .agg((pl.col("daily_cost") * SAVINGS_PLAN_RATE).sum().alias("used"))
        .with_columns(
            (
                pl.col("used")
                / pl.when(pl.col("plan") == 0)
                .then(_UNDERUSED_PLAN_UTILIZATION)
                .otherwise(_WELL_USED_PLAN_UTILIZATION)
            ).alias("commitment"),
            _plan_id(pl.col("plan")).alias("plan_id"),
        )
        .sort("plan")
    )


def _daily_cost() -> pl.Expr:
    kind = pl.col("kind")
    return pl.when(kind == "vm").then(pl.col("units") * 0.024 * 24).when(kind == "database").then(
        pl.col("units") * 0.043 * 24
    ).when(kind == "volume").then(
        pl.col("size_gb") * pl.when(pl.col("gp2")).then(0.10).otherwise(0.08) / 30
    ).when(kind == "snapshot").then(pl.col("size_gb") * 0.05 / 30).when(kind == "ip_address").then(
        pl.lit(0.005 * 24)
    ).when(kind == "load_balancer").then(pl.lit(0.0225 * 24)).otherwise(
        pl.col("size_gb") * 0.023 / 30
    ) * pl.col("noise")


def _inventory(estate: pl.DataFrame) -> pl.DataFrame:
    end = pl.lit(SAMPLE_END)
    kind = pl.col("kind")

    def ago(days: pl.Expr) -> pl.Expr:
        return (end - pl.duration(seconds=(days * 86400).cast(pl.Int64))).dt.truncate("1s")

    state = (
        pl.when(kind == "vm")
        .then(pl.when(pl.col("stopped")).then(pl.lit("stopped")).otherwise(pl.lit("running")))
        .when(kind == "volume")
        .then(pl.when(pl.col("unattached")).then(pl.lit("available")).otherwise(pl.lit("in-use")))
        .when(kind == "snapshot")
        .then(pl.lit("completed"))
        .otherwise(pl.lit("available"))
    )
    attached = (
        pl.when(kind == "volume")
        .then(~pl.col("unattached"))
        .when(kind == "ip_address")
        .then(~pl.col("ip_free"))
        .when(kind == "load_balancer")
        .then(~pl.col("lb_idle"))
        .otherwise(None)
    )
    return estate.select(
        "resource_id",
        pl.format("{}-{}", "kind", "i").alias("name"),
        "kind",
        pl.lit("aws").alias("provider"),
        pl.col("acct").alias("account_id"),
        "region",
        state.alias("state"),
        "instance_type",
        attached.alias("attached"),
        pl.when((kind == "volume") & ~pl.col("unattached"))
        .then(pl.format("i-0{}", pl.col("i").cast(pl.String).str.zfill(12)))
        .otherwise(None)
        .alias("attached_to"),
        pl.when(kind == "vm")
        .then(pl.when(pl.col("stopped")).then(2).otherwise(1))
        .otherwise(None)
        .cast(pl.Int32)
        .alias("attached_volume_count"),
        pl.when(kind == "vm").then(pl.col("size_gb")).otherwise(None).alias("attached_volume_gb"),
        pl.when(kind == "volume")
        .then(
            pl.when(pl.col("gp2"))
            .then(pl.lit("gp2"))
            .otherwise(pl.coalesce(pl.col("volume_type"), pl.lit("gp3")))
        )
        .otherwise(None)
        .alias("volume_type"),
        pl.when(kind == "volume").then(pl.col("provisioned_iops")).alias("provisioned_iops"),
        "platform",
        pl.when(kind.is_in(["volume", "snapshot", "bucket", "database"]))
        .then(pl.col("size_gb"))
        .otherwise(None)
        .alias("size_gb"),
        pl.when(kind == "load_balancer")
        .then(pl.when(pl.col("lb_idle")).then(0).otherwise(3))
        .otherwise(None)
        .cast(pl.Int32)
        .alias("target_count"),
        pl.when(kind == "database").then(pl.lit("postgres")).otherwise(None).alias("engine"),
        pl.when(kind == "bucket")
        .then(~pl.col("bucket_nolc"))
        .otherwise(None)
        .alias("lifecycle_policy"),
        pl.when(kind == "snapshot")
        .then(pl.format("vol-0{}", pl.col("hex")))
        .otherwise(None)
        .alias("source_volume_id"),
        pl.when(kind == "snapshot")
        .then(pl.col("used_by_image"))
        .otherwise(None)
        .alias("used_by_image"),
        ago(pl.col("age_days")).alias("created_at"),
        pl.when((kind == "volume") & pl.col("unattached"))
        .then(ago(pl.col("detached_days")))
        .otherwise(None)
        .alias("last_attached_at"),
        pl.when(pl.col("stopped"))
        .then(ago(pl.col("stopped_days")))
        .otherwise(None)
        .alias("state_changed_at"),
        "tags",
    )


def _utilization(rng: np.random.Generator, estate: pl.DataFrame, days: int) -> pl.DataFrame:
    """Wide samples, several a day, for VMs, databases and load balancers."""
    measured = estate.filter(pl.col("kind").is_in(["vm", "database", "load_balancer"])).filter(
        ~pl.col("stopped")
    )
    per = _SAMPLE_RATE_PER_DAY
    steps = min(days, 30) * per
    m = measured.height
    if m == 0:
        return pl.DataFrame(
            schema={"resource_id": pl.String, "timestamp": pl.Datetime("us", "UTC")}
        )
    kind = measured["kind"].to_numpy()
    idle = measured["idle"].to_numpy() | measured["db_idle"].to_numpy()
    over = measured["oversized"].to_numpy() | measured["db_oversized"].to_numpy()
    cpu_level = np.where(
        idle,
        rng.uniform(0.3, 1.5, m),
        np.where(over, rng.uniform(8, 18, m), rng.uniform(35, 70, m)),
    )
    mem_level = np.where(over | idle, rng.uniform(10, 25, m), rng.uniform(45, 80, m))
    # Idle means under the savings pack's 5 MB a day (about 58 B/s) of network traffic.
    net_level = np.where(idle, rng.uniform(5, 50, m), rng.uniform(2e5, 5e6, m))
    req_level = np.where(measured["lb_idle"].to_numpy(), 0.0, rng.uniform(50, 5000, m))
    conn_level = np.where(measured["db_idle"].to_numpy(), 0.0, rng.uniform(5, 200, m))
    rows = m * steps
    who = np.repeat(np.arange(m), steps)
    step = np.tile(np.arange(steps), m)
    wobble = rng.normal(1.0, 0.15, rows).clip(0.2, 2.5)
    cpu = (cpu_level[who] * wobble).clip(0, 100)
    mem = (mem_level[who] * rng.normal(1.0, 0.05, rows)).clip(0, 100)
    start = SAMPLE_END - timedelta(days=steps / per)
    seconds = (step * (86400 // per)).astype("int64")
    frame = pl.DataFrame(
        {
            "resource_id": measured["resource_id"].gather(who),
            "offset": seconds,
            "cpu": np.round(cpu, 3),
            "mem": np.round(mem, 3),
            "network": np.round(net_level[who] * wobble, 1),
            "requests": np.round(req_level[who] * wobble / per),
            "connections": np.round(conn_level[who] * wobble),
            "kind": kind[who].astype(str),
        }
    )
    return frame.select(
        "resource_id",
        (pl.lit(start) + pl.duration(seconds=pl.col("offset")) + pl.duration(hours=6)).alias(
            "timestamp"
        ),
        pl.when(pl.col("kind").is_in(["vm", "database"])).then(pl.col("cpu")).alias("cpu"),
        pl.when(pl.col("kind").is_in(["vm", "database"])).then(pl.col("mem")).alias("mem"),
        pl.when(pl.col("kind") == "vm").then(pl.col("network")).alias("network"),
        pl.when(pl.col("kind") == "load_balancer").then(pl.col("requests")).alias("requests"),
        pl.when(pl.col("kind") == "database").then(pl.col("connections")).alias("connections"),
    )


def _iops_utilization(rng: np.random.Generator, estate: pl.DataFrame, days: int) -> pl.DataFrame:
    """Read and write IOPS of the volumes with provisioned IOPS, several samples a day."""
    measured = estate.filter(pl.col("iops_peak").is_not_null() & ~pl.col("unattached"))
    per = _SAMPLE_RATE_PER_DAY
    steps = min(days, 30) * per
    m = measured.height
    if m == 0:
        return pl.DataFrame(
            schema={"resource_id": pl.String, "timestamp": pl.Datetime("us", "UTC")}
        )
    who = np.repeat(np.arange(m), steps)
    step = np.tile(np.arange(steps), m)
    peak = measured["iops_peak"].to_numpy()
    # The peak is reached once; the rest of the time the volume runs at 30-90% of it.
    level = np.where(step == steps // 2, 1.0, rng.uniform(0.3, 0.9, who.size)) * peak[who]
    read = np.round(level * 0.7, 1)
    start = SAMPLE_END - timedelta(days=steps / per)
    return pl.DataFrame(
        {
            "resource_id": measured["resource_id"].gather(who),
            "offset": (step * (86400 // per)).astype("int64"),
            "read_iops": read,
            "write_iops": np.round(level - read, 1),
        }
    ).select(
        "resource_id",
        (pl.lit(start) + pl.duration(seconds=pl.col("offset")) + pl.duration(hours=6)).alias(
            "timestamp"
        ),
        "read_iops",
        "write_iops",
    )


def _billing(
    rng: np.random.Generator,
    estate: pl.DataFrame,
    days: int,
    folder: Path,
    rows_per_part: int,
    progress: Progress | None,
) -> int:
    """One FOCUS row per resource per day; stopped VMs stop billing when they stopped."""
    static = estate.select(
        pl.col("resource_id").alias("ResourceId"),
        pl.format("{}-{}", "kind", "i").alias("ResourceName"),
        pl.col("kind")
        .replace_strict({k: v[2] for k, v in _SERVICES.items()}, return_dtype=pl.String)
        .alias("ResourceType"),
        pl.col("kind")
        .replace_strict({k: v[0] for k, v in _SERVICES.items()}, return_dtype=pl.String)
        .alias("ServiceName"),
        pl.col("kind")
        .replace_strict({k: v[1] for k, v in _SERVICES.items()}, return_dtype=pl.String)
        .alias("ServiceCategory"),
        pl.col("region").alias("RegionId"),
        pl.col("acct").alias("SubAccountId"),
        pl.format("team-{}", "team").alias("SubAccountName"),
        pl.col("tags").alias("Tags"),
        "daily_cost",
        pl.when(pl.col("stopped")).then(pl.col("stopped_days")).otherwise(None).alias("stopped"),
        pl.when(pl.col("kind").is_in(["volume", "snapshot", "bucket"]))
        .then(pl.lit("GB-Mo"))
        .otherwise(pl.lit("Hrs"))
        .alias("PricingUnit"),
        "iops_daily",
        pl.when(pl.col("plan") >= 0).then(_plan_id(pl.col("plan"))).alias("plan_id"),
    )
    plans = _plans(estate)
    n = static.height
    days_per_part = max(1, rows_per_part // max(n, 1))
    total = 0
    first_day = SAMPLE_END - timedelta(days=days)
    for part, day0 in enumerate(range(0, days, days_per_part)):
        span = min(days_per_part, days - day0)
        who = np.tile(np.arange(n), span)
        day = np.repeat(np.arange(day0, day0 + span), n)
        jitter = rng.uniform(0.95, 1.05, who.size)
        credit = rng.random(who.size) < 0.002
        chunk = static.gather(who).with_columns(
            pl.Series("day", day, dtype=pl.Int64),
            pl.Series("jitter", jitter),
            pl.Series("credit", credit),
        )
        start = pl.lit(first_day) + pl.duration(days=pl.col("day"))
        days_left = float(days) - pl.col("day").cast(pl.Float64)
        running = pl.col("stopped").is_null() | (days_left > pl.col("stopped"))
        chunk = chunk.filter(running)
        cost = pl.col("daily_cost") * pl.col("jitter")
        on_demand = pl.when(pl.col("credit")).then(-cost * 0.5).otherwise(cost).round(6)
        # Usage a Savings Plan covers is not invoiced (the plan's fee is) and costs the plan's
        # rate; credits stay as they are.
        covered = pl.col("plan_id").is_not_null() & ~pl.col("credit")
        used = pl.when(covered)
        focus = chunk.select(
            pl.lit("1000000000").alias("BillingAccountId"),
            pl.lit("Example Corp").alias("BillingAccountName"),
            pl.lit("USD").alias("BillingCurrency"),
            used.then(0.0).otherwise(on_demand).alias("BilledCost"),
            used.then((cost * SAVINGS_PLAN_RATE).round(6))
            .otherwise(on_demand)
            .alias("EffectiveCost"),
            pl.when(pl.col("credit")).then(0.0).otherwise(cost * 1.1).round(6).alias("ListCost"),
            pl.when(pl.col("credit"))
            .then(pl.lit("Credit"))
            .otherwise(pl.lit("Usage"))
            .alias("ChargeCategory"),
            start.alias("ChargePeriodStart"),
            (start + pl.duration(days=1)).alias("ChargePeriodEnd"),
            pl.lit("AWS").alias("ServiceProviderName"),
            pl.lit("AWS").alias("ProviderName"),
            "ResourceId",
            "ResourceName",
            "ResourceType",
            "ServiceName",
            "ServiceCategory",
            "RegionId",
            "SubAccountId",
            "SubAccountName",
            "Tags",
            "PricingUnit",
            used.then(pl.col("plan_id")).alias("CommitmentDiscountId"),
            used.then(pl.lit("Used")).alias("CommitmentDiscountStatus"),
            used.then(pl.lit("Savings Plan")).alias("CommitmentDiscountType"),
            used.then(pl.lit("Spend")).alias("CommitmentDiscountCategory"),
            pl.lit("synthetic").alias("x_Generator"),
        )
        focus = pl.concat(
            [focus, _iops_rows(chunk, focus), *_plan_rows(focus, plans)], how="vertical"
        )
        focus.write_parquet(
            folder / f"part-{part:04d}.parquet", compression="zstd", statistics=True
        )
        total += focus.height
        if progress:
            progress(f"wrote {total:,} billing rows")
    return total


def _iops_rows(chunk: pl.DataFrame, focus: pl.DataFrame) -> pl.DataFrame:
    """A volume's provisioned IOPS, billed per IOPS-month on rows of their own."""
    iops = pl.col("iops_daily") * pl.col("jitter")
    rows = (
        focus.with_columns(chunk["iops_daily"], chunk["jitter"])
        .filter(pl.col("iops_daily").is_not_null())
        .with_columns(
            iops.round(6).alias("BilledCost"),
            iops.round(6).alias("EffectiveCost"),
            (iops * 1.1).round(6).alias("ListCost"),
            pl.lit("Usage").alias("ChargeCategory"),
            pl.lit("IOPS-Mo").alias("PricingUnit"),
        )
    )
    return rows.drop("iops_daily", "jitter")


def _plan_rows(focus: pl.DataFrame, plans: pl.DataFrame) -> list[pl.DataFrame]:
    """Each plan's daily fee (invoiced, amortized onto usage) and its unused part."""
    if not plans.height:
        return []
    used = (
        focus.filter(pl.col("CommitmentDiscountId").is_not_null())
        .group_by("ChargePeriodStart", "ChargePeriodEnd", "CommitmentDiscountId")
        .agg(pl.col("EffectiveCost").sum().alias("used"))
    )
    days = focus.select("ChargePeriodStart", "ChargePeriodEnd").unique()
    daily = (
        days.join(plans.select("plan_id", "commitment"), how="cross")
        .join(
            used,
            left_on=["ChargePeriodStart", "ChargePeriodEnd", "plan_id"],
            right_on=["ChargePeriodStart", "ChargePeriodEnd", "CommitmentDiscountId"],
            how="left",
        )
        .with_columns(pl.col("used").fill_null(0.0))
        .sort("ChargePeriodStart", "plan_id")
    )
    template = focus.head(1).drop("ChargePeriodStart", "ChargePeriodEnd")

    def rows(fee: bool) -> pl.DataFrame:
        unused = (pl.col("commitment") - pl.col("used")).clip(lower_bound=0.0).round(6)
        frame = daily.select(
            "ChargePeriodStart",
            "ChargePeriodEnd",
            pl.col("plan_id").alias("ResourceId"),
            pl.col("plan_id").str.split("/").list.last().alias("ResourceName"),
            (pl.col("commitment").round(6) if fee else pl.lit(0.0)).alias("BilledCost"),
            (pl.lit(0.0) if fee else unused).alias("EffectiveCost"),
            (pl.lit(0.0) if fee else unused).alias("ListCost"),
            pl.lit("Purchase" if fee else "Usage").alias("ChargeCategory"),
            pl.lit(None, dtype=pl.String) if fee else pl.lit("Unused"),
        ).rename({"literal": "CommitmentDiscountStatus"})
        constant = {
            "ResourceType": "Savings Plan",
            "ServiceName": "Savings Plans for AWS Compute usage",
            "ServiceCategory": "Compute",
            "RegionId": None,
            "SubAccountId": "1000000000",
            "SubAccountName": "finops",
            "Tags": '{"owner": "finops"}',
            "PricingUnit": "Hrs",
            "CommitmentDiscountType": "Savings Plan",
            "CommitmentDiscountCategory": "Spend",
        }
        frame = frame.with_columns(
            pl.col("ResourceId").alias("CommitmentDiscountId"),
            *[pl.lit(value, dtype=pl.String).alias(name) for name, value in constant.items()],
        )
        shared = template.drop(*[c for c in template.columns if c in frame.columns])
        return frame.join(shared, how="cross").select(focus.columns).cast(focus.schema)

    return [rows(fee=True), rows(fee=False)]


def bundled_sample() -> SampleFiles:
    """The small sample shipped inside the package (see ``BUNDLED_SAMPLE``)."""
    folder = Path(__file__).with_name("sample_data")
    billing = folder / "billing"
    if not billing.is_dir():
        raise ConfigError(
            f"the bundled sample is missing from {folder}",
            fix="reinstall reclaim, or run `reclaim sample generate --out DIR`",
        )
    rows = sum(
        pl.scan_parquet(part).select(pl.len()).collect().item() for part in billing.iterdir()
    )
    return SampleFiles(
        billing,
        folder / "inventory.csv",
        folder / "utilization.csv",
        int(BUNDLED_SAMPLE["resources"]),
        int(rows),
    )
