"""Classifying a resource into a provider-neutral ``kind`` from what the bill or inventory says.

The bill's ``ResourceType`` is free text that differs per provider ("instance", "Virtual
machine", "Disk"), and often empty; the resource id usually says more (``i-…``, ``vol-…``,
``…:loadbalancer/…``). We try the type first, then the id, then fall back to ``other``.
"""

from __future__ import annotations

__all__ = ["kind_expr"]

from typing import Final

import polars as pl

from reclaim.ingest.facts import KINDS

# (kind, pattern on the lower-cased type, pattern on the lower-cased id); first match wins,
# so snapshots are tested before volumes and databases before virtual machines.
_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    # Savings Plans and reservations: a commitment's own rows say "Savings Plan" or
    # "Reserved Instance" in ResourceType, and "reserved instance" must not read as a VM.
    (
        "commitment",
        r"(savings.?plan|reserv|commitment)",
        r"(:savingsplan/|:reserved-instances/|/reservationorders/|/commitments/)",
    ),
    ("snapshot", r"snapshot", r"(^snap-|:snapshot/|/snapshots/)"),
    (
        "ip_address",
        r"(elastic.?ip|ip.?address|^eip$|publicip)",
        r"(^eipalloc-|:elastic-ip/|/publicipaddresses/)",
    ),
    ("load_balancer", r"(load.?balancer|^elb$|^alb$|^nlb$)", r"(:loadbalancer/|/loadbalancers/)"),
    (
        "database",
        r"(db.?instance|database|sql.?server|^rds$|mysql|postgres)",
        r"(:rds:.*:db:|/databases/|/flexibleservers/)",
    ),
    ("bucket", r"(bucket|storage.?account|^s3$)", r"(^arn:aws:s3:::|/storageaccounts/)"),
    ("volume", r"(volume|disk|^ebs$)", r"(^vol-|:volume/|/disks/)"),
    (
        "vm",
        r"(^instance$|ec2.?instance|virtual.?machine|^vm$)",
        r"(^i-[0-9a-f]+$|:instance/i-|/virtualmachines/|ocid1\.instance)",
    ),
)


def kind_expr(resource_type: pl.Expr, resource_id: pl.Expr) -> pl.Expr:
    """An expression giving one of ``KINDS`` for each row (``other`` when nothing matches)."""
    rtype = resource_type.str.to_lowercase().str.strip_chars()
    rid = resource_id.str.to_lowercase()
    result = pl.lit("other")
    for kind, type_pattern, _id_pattern in reversed(_RULES):
        result = pl.when(rtype.str.contains(type_pattern)).then(pl.lit(kind)).otherwise(result)
    exact = rtype.is_in(list(KINDS))
    by_id = pl.lit("other")
    for kind, _type_pattern, id_pattern in reversed(_RULES):
        by_id = pl.when(rid.str.contains(id_pattern)).then(pl.lit(kind)).otherwise(by_id)
    by_type = pl.when(exact).then(rtype).otherwise(result)
    return (
        pl.when(by_type.is_not_null() & (by_type != "other"))
        .then(by_type)
        .otherwise(by_id.fill_null("other"))
    )
