"""A resource's monthly cost before and after a change, from a small price table.

The table ships with the policy pack (``pack/prices.csv``: catalog, size, unit, usd, vcpus) and
can be replaced by one of your own with the same columns. Prices are per hour for machines
(a month is 730 hours, as the clouds bill) and per GB-month for disks. A resource whose size is
unknown until apply, or missing from the table, has no cost (null), never zero: a policy on cost
then cannot fire on a guess.
"""

from __future__ import annotations

__all__ = ["HOURS_PER_MONTH", "PriceTable", "load_prices"]

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from reclaim.errors import ConfigError, SourceLocation
from reclaim.policy.resources import lookup, size_of

HOURS_PER_MONTH: Final = 730.0

# Resource type → the catalog its size is priced in.
_MACHINE_CATALOGS: Final[dict[str, str]] = {
    "aws_instance": "aws_ec2",
    "aws_launch_template": "aws_ec2",
    "aws_db_instance": "aws_rds",
    "aws_rds_cluster_instance": "aws_rds",
    "aws_elasticache_cluster": "aws_elasticache",
    "azurerm_linux_virtual_machine": "azure_vm",
    "azurerm_windows_virtual_machine": "azure_vm",
    "azurerm_virtual_machine": "azure_vm",
    "azurerm_postgresql_flexible_server": "azure_db",
    "azurerm_mysql_flexible_server": "azure_db",
    "google_compute_instance": "gcp_compute",
    "google_sql_database_instance": "gcp_sql",
}
# Templates describe machines without running any: they have a size but no cost.
_NOT_RUNNING: Final = frozenset({"aws_launch_template"})
# Disks: type → (catalog, size attribute, type attribute, default type).
_DISKS: Final[dict[str, tuple[str, str, str, str | None]]] = {
    "aws_ebs_volume": ("aws_ebs", "size", "type", None),
    "azurerm_managed_disk": ("azure_disk", "disk_size_gb", "storage_account_type", None),
    "google_compute_disk": ("gcp_disk", "size", "type", "pd-standard"),
}


@dataclass(frozen=True)
class PriceTable:
    """Prices by (catalog, size): ``(usd per unit, unit, vcpus or None)``."""

    prices: Mapping[tuple[str, str], tuple[float, str, int | None]]
    source: str

    def vcpus(self, resource_type: str, size: str | None) -> int | None:
        """Virtual CPUs of a machine size, when the table knows it."""
        catalog = _MACHINE_CATALOGS.get(resource_type)
        if catalog is None or size is None:
            return None
        entry = self.prices.get((catalog, size))
        return entry[2] if entry else None

    def monthly_cost(self, resource_type: str, values: Any) -> float | None:
        """The monthly list cost of a resource with these attributes, or None if unknown."""
        if not isinstance(values, Mapping) or resource_type in _NOT_RUNNING:
            return None
        disk = _DISKS.get(resource_type)
        if disk is not None:
            catalog, size_key, type_key, default = disk
            return self._storage(catalog, values.get(type_key) or default, values.get(size_key))
        machines = _MACHINE_CATALOGS.get(resource_type)
        if machines is None:
            return None
        entry = self.prices.get((machines, size_of(resource_type, values) or ""))
        if entry is None:
            return None
        cost = entry[0] * HOURS_PER_MONTH
        if resource_type == "aws_db_instance":
            storage = self._storage(
                "aws_rds_storage",
                values.get("storage_type") or "gp2",
                values.get("allocated_storage"),
            )
            cost += storage or 0.0
            if values.get("multi_az") is True:
                cost *= 2
        elif resource_type == "aws_elasticache_cluster":
            nodes = values.get("num_cache_nodes")
            cost *= nodes if isinstance(nodes, int) and nodes > 0 else 1
        elif resource_type == "aws_instance":
            for device in values.get("root_block_device") or ():
                cost += (
                    self._storage(
                        "aws_ebs",
                        lookup(device, ("volume_type",)),
                        lookup(device, ("volume_size",)),
                    )
                    or 0.0
                )
        return round(cost, 2)

    def _storage(self, catalog: str, kind: Any, size: Any) -> float | None:
        if not isinstance(kind, str) or isinstance(size, bool) or not isinstance(size, int | float):
            return None
        entry = self.prices.get((catalog, kind))
        if entry is None:
            return None
        return round(entry[0] * size, 2)


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The price table at ``path``, or the one shipped with the pack."""
    if path is None:
        source = "reclaim/policy/pack/prices.csv"
        text = resources.files("reclaim.policy").joinpath("pack/prices.csv").read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the price table: {exc.strerror or exc}",
                location=SourceLocation(source),
                fix="check the path",
            ) from exc
    return PriceTable(_parse(text, source), source)


def _parse(text: str, source: str) -> dict[tuple[str, str], tuple[float, str, int | None]]:
    lines = [line for line in io.StringIO(text) if not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    expected = {"catalog", "size", "unit", "usd"}
    if reader.fieldnames is None or not expected <= set(reader.fieldnames):
        raise ConfigError(
            "the price table needs the columns catalog, size, unit, usd (and optionally vcpus)",
            location=SourceLocation(source, 1),
            fix="start the file with the header 'catalog,size,unit,usd,vcpus'",
        )
    prices: dict[tuple[str, str], tuple[float, str, int | None]] = {}
    comments = text.count("\n", 0, text.find("catalog")) if "catalog" in text else 0
    for number, row in enumerate(reader, start=comments + 2):
        try:
            usd = float(row["usd"])
            vcpus_text = (row.get("vcpus") or "").strip()
            vcpus = int(vcpus_text) if vcpus_text else None
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"bad price row: {exc}",
                location=SourceLocation(source, number),
                fix="write usd as a number and vcpus as a whole number or nothing",
            ) from exc
        if row["unit"] not in ("hour", "gb-month"):
            raise ConfigError(
                f"unit {row['unit']!r} is not 'hour' or 'gb-month'",
                location=SourceLocation(source, number),
                fix="price machines per hour and disks per gb-month",
            )
        prices[(row["catalog"], row["size"])] = (usd, row["unit"], vcpus)
    return prices
