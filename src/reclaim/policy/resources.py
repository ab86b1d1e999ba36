"""What reclaim knows about resource types of the AWS, Azure and Google providers.

Policies are written against a few normalized fields (``category``, ``size``, ``family``,
``volume_types``, ``encrypted``) so one rule covers the three clouds; the provider-specific
attribute names are looked up here. A type not listed gets nulls, and a null condition never
matches, so an unknown type is never denied by accident.
"""

from __future__ import annotations

__all__ = [
    "CATEGORIES",
    "COMPANIONS",
    "encrypted_of",
    "family_of",
    "lookup",
    "provider_of",
    "size_of",
    "tags_of",
    "volume_types_of",
]

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

#: Resource type → category, the word policies use to select resources across clouds.
CATEGORIES: Final[dict[str, str]] = {
    "aws_instance": "compute",
    "aws_launch_template": "compute",
    "azurerm_linux_virtual_machine": "compute",
    "azurerm_windows_virtual_machine": "compute",
    "azurerm_virtual_machine": "compute",
    "google_compute_instance": "compute",
    "aws_db_instance": "database",
    "aws_rds_cluster_instance": "database",
    "aws_rds_cluster": "database",
    "azurerm_postgresql_flexible_server": "database",
    "azurerm_mysql_flexible_server": "database",
    "google_sql_database_instance": "database",
    "aws_elasticache_cluster": "cache",
    "aws_elasticache_replication_group": "cache",
    "aws_ebs_volume": "volume",
    "azurerm_managed_disk": "volume",
    "google_compute_disk": "volume",
    "aws_efs_file_system": "filesystem",
    "aws_s3_bucket": "bucket",
    "azurerm_storage_account": "bucket",
    "google_storage_bucket": "bucket",
}

# Where each type keeps its size: a path into the attributes.
_SIZE_PATHS: Final[dict[str, tuple[str | int, ...]]] = {
    "aws_instance": ("instance_type",),
    "aws_launch_template": ("instance_type",),
    "aws_db_instance": ("instance_class",),
    "aws_rds_cluster_instance": ("instance_class",),
    "aws_elasticache_cluster": ("node_type",),
    "aws_elasticache_replication_group": ("node_type",),
    "azurerm_linux_virtual_machine": ("size",),
    "azurerm_windows_virtual_machine": ("size",),
    "azurerm_virtual_machine": ("vm_size",),
    "azurerm_postgresql_flexible_server": ("sku_name",),
    "azurerm_mysql_flexible_server": ("sku_name",),
    "google_compute_instance": ("machine_type",),
    "google_sql_database_instance": ("settings", 0, "tier"),
}

#: Companion resources that configure a bucket from outside it: type → (attribute naming the
#: bucket, what it configures).
COMPANIONS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "aws_s3_bucket_lifecycle_configuration": (("bucket",), "lifecycle"),
    "aws_s3_bucket_acl": (("bucket",), "acl"),
    "aws_s3_bucket_public_access_block": (("bucket",), "public_access_block"),
    "aws_s3_bucket_server_side_encryption_configuration": (("bucket",), "encryption"),
    "azurerm_storage_management_policy": (("storage_account_id",), "lifecycle"),
    "azurerm_storage_container": (("storage_account_id", "storage_account_name"), "container"),
    "google_storage_bucket_iam_member": (("bucket",), "iam"),
    "google_storage_bucket_iam_binding": (("bucket",), "iam"),
}

_PROVIDER = re.compile(r"(?:^|/)([a-z0-9-]+)\"?\]?$")


def provider_of(provider_name: str, resource_type: str) -> str:
    """The provider's short name: ``registry.terraform.io/hashicorp/aws`` → ``aws``."""
    if provider_name:
        match = _PROVIDER.search(provider_name)
        if match:
            return match.group(1)
    return resource_type.split("_", 1)[0]


def lookup(values: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` inside nested maps and lists, or None."""
    current = values
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        else:
            if not isinstance(current, Mapping):
                return None
            current = current.get(step)
        if current is None:
            return None
    return current


def size_of(resource_type: str, values: Any) -> str | None:
    """The instance, machine or database size, as the provider writes it."""
    path = _SIZE_PATHS.get(resource_type)
    if path is None:
        return None
    size = lookup(values, path)
    if not isinstance(size, str) or not size:
        return None
    if resource_type == "google_compute_instance":
        # machine_type may be a URL or a "zones/…/machineTypes/NAME" path.
        size = size.rsplit("/", 1)[-1]
    return size


_AZURE_SIZE = re.compile(
    r"^(?:(?:GP|MO|B)_)?(?:Standard_|Basic_)?([A-Za-z]+)\d+(?:-\d+)?([a-z]*)(_.*)?$"
)


def family_of(provider: str, size: str | None) -> str | None:
    """The family of a size: ``m5.large`` → ``m5``, ``db.r5.xlarge`` → ``db.r5``,
    ``Standard_D4s_v3`` → ``Ds_v3``, ``n2-standard-4`` → ``n2``, ``db-custom-2-7680`` →
    ``db-custom``."""
    if not size:
        return None
    if provider == "aws":
        parts = size.split(".")
        if len(parts) >= 3 and parts[0] in ("db", "cache"):
            return f"{parts[0]}.{parts[1]}"
        return parts[0] if len(parts) >= 2 else None
    if provider == "azurerm":
        match = _AZURE_SIZE.match(size)
        if not match:
            return None
        letters, features, version = match.groups()
        return f"{letters}{features}{version or ''}"
    if provider == "google":
        parts = size.split("-")
        if parts[0] == "db" and len(parts) > 1:
            return f"db-{parts[1]}"
        if parts[0] in ("f1", "g1", "custom"):
            return "n1" if parts[0] == "custom" else parts[0]
        return parts[0]
    return None


def volume_types_of(resource_type: str, values: Any) -> list[str]:
    """Every disk type the resource asks for (``gp2``, ``io1``, ``Premium_LRS``, ``pd-ssd``)."""
    found: list[Any] = []
    if resource_type in ("aws_ebs_volume", "google_compute_disk"):
        found.append(lookup(values, ("type",)))
    elif resource_type == "aws_instance":
        for block in ("root_block_device", "ebs_block_device"):
            for device in lookup(values, (block,)) or ():
                found.append(lookup(device, ("volume_type",)))
    elif resource_type == "aws_launch_template":
        for mapping in lookup(values, ("block_device_mappings",)) or ():
            for ebs in lookup(mapping, ("ebs",)) or ():
                found.append(lookup(ebs, ("volume_type",)))
    elif resource_type == "aws_db_instance":
        found.append(lookup(values, ("storage_type",)))
    elif resource_type == "azurerm_managed_disk":
        found.append(lookup(values, ("storage_account_type",)))
    elif resource_type in ("azurerm_linux_virtual_machine", "azurerm_windows_virtual_machine"):
        for disk in lookup(values, ("os_disk",)) or ():
            found.append(lookup(disk, ("storage_account_type",)))
    elif resource_type == "google_compute_instance":
        for disk in lookup(values, ("boot_disk",)) or ():
            for params in lookup(disk, ("initialize_params",)) or ():
                found.append(lookup(params, ("type",)))
    return [item for item in found if isinstance(item, str) and item]


_ENCRYPTION_FLAGS: Final[dict[str, str]] = {
    "aws_ebs_volume": "encrypted",
    "aws_efs_file_system": "encrypted",
    "aws_db_instance": "storage_encrypted",
    "aws_rds_cluster": "storage_encrypted",
    "aws_redshift_cluster": "encrypted",
    "aws_elasticache_replication_group": "at_rest_encryption_enabled",
}


def encrypted_of(resource_type: str, values: Any) -> bool | None:
    """Whether the data at rest is encrypted: False only when the plan says so.

    None when unknown until apply, or when the platform always encrypts (Azure and Google
    storage, S3 since January 2023), so an unencrypted-storage rule cannot misfire on them.
    """
    flag = _ENCRYPTION_FLAGS.get(resource_type)
    if flag is not None:
        value = lookup(values, (flag,))
        return value if isinstance(value, bool) else None
    if resource_type == "aws_instance":
        flags: list[Any] = []
        for block in ("root_block_device", "ebs_block_device"):
            for device in lookup(values, (block,)) or ():
                flags.append(lookup(device, ("encrypted",)))
        if False in flags:
            return False
        if flags and all(flag is True for flag in flags):
            return True
    return None


def tags_of(resource_type: str, values: Any) -> Any:
    """The resource's tags (labels on Google): the effective ``tags_all`` when known."""
    if not isinstance(values, Mapping):
        return None
    if resource_type.startswith("google_"):
        for key in ("effective_labels", "labels"):
            if isinstance(values.get(key), Mapping):
                return values[key]
        return None
    tags_all = values.get("tags_all")
    if isinstance(tags_all, Mapping) and tags_all:
        return tags_all
    tags = values.get("tags")
    if isinstance(tags, Mapping):
        return tags
    return tags_all if isinstance(tags_all, Mapping) else None
