"""AWS through boto3: EC2 instances, EBS volumes and snapshots, Elastic IPs, load balancers,
RDS databases, S3 buckets (lifecycle policy) and CloudWatch utilization, turned into the same
facts table as the file collectors.

The caller builds the ``boto3.Session`` (credentials, profile, role) and passes it in, so tests
hand in a session under moto and production hands in a real one: the code is the same. Only
read-only ``Describe*``/``GetMetricData`` calls are made. Costs are not read from AWS APIs (Cost
Explorer bills per call); combine with a FOCUS export for 30-day costs.
"""

from __future__ import annotations

__all__ = ["AWS_METRICS", "collect_aws", "read_aws"]

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

import polars as pl
from botocore.exceptions import BotoCoreError, ClientError

from reclaim.errors import ExecutionError
from reclaim.ingest.collector import Collection, build_facts
from reclaim.ingest.files import discover
from reclaim.ingest.focus import BILLING_FORMATS, read_billing
from reclaim.ingest.inventory import InventoryData, inventory_schema
from reclaim.ingest.utilization import SAMPLE_SCHEMA, UtilizationData

Progress = Callable[[str], None]

AWS_METRICS: Final = (
    # (namespace, metric, statistic, dimension, our metric, divide by period)
    ("AWS/EC2", "CPUUtilization", "Average", "InstanceId", "cpu", False),
    ("AWS/EC2", "NetworkIn", "Sum", "InstanceId", "network", True),
    ("AWS/EC2", "NetworkOut", "Sum", "InstanceId", "network", True),
    ("AWS/ApplicationELB", "RequestCount", "Sum", "LoadBalancer", "requests", False),
    ("AWS/RDS", "CPUUtilization", "Average", "DBInstanceIdentifier", "cpu", False),
    ("AWS/RDS", "DatabaseConnections", "Maximum", "DBInstanceIdentifier", "connections", False),
    ("AWS/EBS", "VolumeReadOps", "Sum", "VolumeId", "iops", True),
    ("AWS/EBS", "VolumeWriteOps", "Sum", "VolumeId", "iops", True),
)
"""CloudWatch metrics read per resource. Network and EBS operation sums become per second."""

_PERIOD: Final = 3600
_QUERIES_PER_CALL: Final = 500  # the GetMetricData limit
# "User initiated (2026-11-02 10:00:00 GMT)": the only record EC2 keeps of when it stopped.
_STOPPED_AT = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")


def collect_aws(
    session: Any,
    *,
    regions: Sequence[str],
    days: int = 14,
    billing: Iterable[Path | str] = (),
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Collection:
    """Read every region into one facts table; ``as_of`` is ``now`` (default: the clock).

    ``billing`` adds FOCUS export files or folders for the costs, joined on resource id; the
    30-day cost window then also ends at ``now`` (an export a day behind counts 29 days).
    """
    end = now or datetime.now(UTC)
    bill = None
    billing_files = discover(billing, BILLING_FORMATS)
    if billing_files:
        bill = read_billing(billing_files, as_of=end, progress=progress)
    inventory, samples = read_aws(session, regions=regions, days=days, now=end, progress=progress)
    return build_facts(
        bill,
        inventory,
        samples,
        as_of=end,
        window_days=days,
        sources=(["billing"] if billing_files else []) + ["aws:" + ",".join(regions)],
        progress=progress,
    )


def read_aws(
    session: Any,
    *,
    regions: Sequence[str],
    days: int = 14,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> tuple[InventoryData, UtilizationData]:
    """The inventory rows and metric samples of the given regions."""
    end = now or datetime.now(UTC)
    records: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    account = _call(lambda: session.client("sts").get_caller_identity()["Account"], "sts")
    if progress:
        progress("reading S3 buckets")
    buckets = _buckets(session.client("s3"), set(regions))
    for region in regions:
        if progress:
            progress(f"reading {region}")
        ec2 = session.client("ec2", region_name=region)
        elbv2 = session.client("elbv2", region_name=region)
        rds = session.client("rds", region_name=region)
        region_records = [
            *_instances(ec2),
            *_volumes(ec2),
            *_snapshots(ec2),
            *_addresses(ec2),
            *_load_balancers(elbv2),
            *_databases(rds),
            *buckets.get(region, []),
        ]
        for record in region_records:
            record.setdefault("account_id", account)
            record["region"] = region
            record["provider"] = "aws"
        records.extend(region_records)
        if progress:
            progress(f"reading CloudWatch metrics in {region}")
        cloudwatch = session.client("cloudwatch", region_name=region)
        samples.extend(_metrics(cloudwatch, region_records, end - timedelta(days=days), end))
    schema = inventory_schema()
    inventory = pl.DataFrame(
        [{name: record.get(name) for name in schema} for record in records],
        schema=schema,
        orient="row",
    )
    metric_frame = pl.DataFrame(samples, schema=SAMPLE_SCHEMA, orient="row")
    return InventoryData(inventory.unique("resource_id", keep="last").sort("resource_id")), (
        UtilizationData(metric_frame)
    )


def _call(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise ExecutionError(
            f"AWS {what} call failed: {exc}",
            fix="check the credentials, the region, and that the role may call Describe* and "
            "cloudwatch:GetMetricData",
        ) from exc


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    def fetch() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return items

    yield from _call(fetch, operation)


def _tags(items: Iterable[dict[str, Any]] | None) -> str | None:
    pairs = {item["Key"]: item.get("Value") for item in items or ()}
    return json.dumps(pairs, sort_keys=True) if pairs else None


def _name(items: Iterable[dict[str, Any]] | None) -> str | None:
    for item in items or ():
        if item.get("Key") == "Name":
            return str(item.get("Value"))
    return None


def _instances(ec2: Any) -> list[dict[str, Any]]:
    records = []
    for reservation in _pages(ec2, "describe_instances", "Reservations"):
        for instance in reservation.get("Instances", []):
            state = instance.get("State", {}).get("Name")
            if state == "terminated":
                continue
            stopped_at = None
            match = _STOPPED_AT.search(instance.get("StateTransitionReason") or "")
            if match and state == "stopped":
                stopped_at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(
                    tzinfo=UTC
                )
            volumes = [m for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
            records.append(
                {
                    "resource_id": instance["InstanceId"],
                    "resource_name": _name(instance.get("Tags")),
                    "resource_type": "ec2_instance",
                    "kind": "vm",
                    "account_id": reservation.get("OwnerId"),
                    "state": state,
                    "instance_type": instance.get("InstanceType"),
                    "platform": instance.get("PlatformDetails") or instance.get("Platform"),
                    "attached_volume_count": len(volumes),
                    "created_at": instance.get("LaunchTime"),
                    "state_changed_at": stopped_at,
                    "tags_json": _tags(instance.get("Tags")),
                }
            )
    return records


def _volumes(ec2: Any) -> list[dict[str, Any]]:
    records = []
    for volume in _pages(ec2, "describe_volumes", "Volumes"):
        attachments = volume.get("Attachments") or []
        records.append(
            {
                "resource_id": volume["VolumeId"],
                "resource_name": _name(volume.get("Tags")),
                "resource_type": "ebs_volume",
                "kind": "volume",
                "state": volume.get("State"),
                "attached": bool(attachments),
                "attached_to": attachments[0].get("InstanceId") if attachments else None,
                "volume_type": volume.get("VolumeType"),
                # gp2 reports its size-based baseline as Iops: nothing was provisioned.
                "provisioned_iops": float(volume["Iops"])
                if volume.get("Iops") and volume.get("VolumeType") in ("io1", "io2", "gp3")
                else None,
                "size_gb": float(volume.get("Size") or 0),
                "created_at": volume.get("CreateTime"),
                # EC2 does not keep a detach time; the attach time of a current attachment is
                # what there is, and an unattached volume falls back to its creation time.
                "last_attached_at": attachments[0].get("AttachTime") if attachments else None,
                "tags_json": _tags(volume.get("Tags")),
            }
        )
    return records


def _snapshots(ec2: Any) -> list[dict[str, Any]]:
    in_images: set[str] = set()
    for image in _pages(ec2, "describe_images", "Images", Owners=["self"]):
        for mapping in image.get("BlockDeviceMappings", []):
            snapshot = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot:
                in_images.add(snapshot)
    records = []
    for snapshot in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        records.append(
            {
                "resource_id": snapshot["SnapshotId"],
                "resource_name": _name(snapshot.get("Tags")),
                "resource_type": "ebs_snapshot",
                "kind": "snapshot",
                "state": snapshot.get("State"),
                "size_gb": float(snapshot.get("VolumeSize") or 0),
                "source_volume_id": snapshot.get("VolumeId"),
                "used_by_image": snapshot["SnapshotId"] in in_images,
                "created_at": snapshot.get("StartTime"),
                "tags_json": _tags(snapshot.get("Tags")),
            }
        )
    return records


def _addresses(ec2: Any) -> list[dict[str, Any]]:
    response = _call(ec2.describe_addresses, "describe_addresses")
    records = []
    for address in response.get("Addresses", []):
        associated = bool(address.get("AssociationId") or address.get("InstanceId"))
        records.append(
            {
                "resource_id": address.get("AllocationId") or address.get("PublicIp"),
                "resource_name": _name(address.get("Tags")) or address.get("PublicIp"),
                "resource_type": "elastic_ip",
                "kind": "ip_address",
                "state": "associated" if associated else "unassociated",
                "attached": associated,
                "attached_to": address.get("InstanceId"),
                "tags_json": _tags(address.get("Tags")),
            }
        )
    return records


def _load_balancers(elbv2: Any) -> list[dict[str, Any]]:
    balancers = list(_pages(elbv2, "describe_load_balancers", "LoadBalancers"))
    tags: dict[str, str | None] = {}
    arns = [lb["LoadBalancerArn"] for lb in balancers]
    for start in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        response = _call(
            partial(elbv2.describe_tags, ResourceArns=arns[start : start + 20]), "describe_tags"
        )
        for item in response.get("TagDescriptions", []):
            tags[item["ResourceArn"]] = _tags(item.get("Tags"))
    records = []
    for lb in balancers:
        arn = lb["LoadBalancerArn"]
        targets = 0
        for group in _pages(elbv2, "describe_target_groups", "TargetGroups", LoadBalancerArn=arn):
            health = _call(
                partial(elbv2.describe_target_health, TargetGroupArn=group["TargetGroupArn"]),
                "describe_target_health",
            )
            targets += len(health.get("TargetHealthDescriptions", []))
        records.append(
            {
                "resource_id": arn,
                "resource_name": lb.get("LoadBalancerName"),
                "resource_type": f"{lb.get('Type', 'application')}_load_balancer",
                "kind": "load_balancer",
                "state": (lb.get("State") or {}).get("Code"),
                "attached": targets > 0,
                "target_count": targets,
                "created_at": lb.get("CreatedTime"),
                "tags_json": tags.get(arn),
            }
        )
    return records


def _databases(rds: Any) -> list[dict[str, Any]]:
    records = []
    for db in _pages(rds, "describe_db_instances", "DBInstances"):
        records.append(
            {
                # FOCUS exports from AWS carry the instance ARN as the ResourceId.
                "resource_id": db["DBInstanceArn"],
                "resource_name": db.get("DBInstanceIdentifier"),
                "resource_type": "rds_db_instance",
                "kind": "database",
                "state": db.get("DBInstanceStatus"),
                "instance_type": db.get("DBInstanceClass"),
                "engine": db.get("Engine"),
                "size_gb": float(db.get("AllocatedStorage") or 0),
                "created_at": db.get("InstanceCreateTime"),
                "tags_json": _tags(db.get("TagList")),
            }
        )
    return records


def _bucket_call(fn: Callable[[], Any], missing: str) -> Any:
    """A per-bucket read where one error code means "not set" rather than failure."""
    try:
        return fn()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == missing:
            return None
        raise ExecutionError(
            f"AWS S3 call failed: {exc}",
            fix="check that the role may call s3:GetLifecycleConfiguration and s3:GetBucketTagging",
        ) from exc


def _buckets(s3: Any, regions: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Buckets of the account by region (S3 lists them all at once), with lifecycle and tags."""
    by_region: dict[str, list[dict[str, Any]]] = {}
    for bucket in _call(s3.list_buckets, "list_buckets").get("Buckets", []):
        name = bucket["Name"]
        location = _call(partial(s3.get_bucket_location, Bucket=name), "get_bucket_location")
        region = location.get("LocationConstraint") or "us-east-1"
        if region not in regions:
            continue
        lifecycle = _bucket_call(
            partial(s3.get_bucket_lifecycle_configuration, Bucket=name),
            "NoSuchLifecycleConfiguration",
        )
        tagging = _bucket_call(partial(s3.get_bucket_tagging, Bucket=name), "NoSuchTagSet")
        by_region.setdefault(region, []).append(
            {
                # The bucket name is what AWS FOCUS exports use as the S3 ResourceId.
                "resource_id": name,
                "resource_name": name,
                "resource_type": "s3_bucket",
                "kind": "bucket",
                "lifecycle_policy": bool(lifecycle and lifecycle.get("Rules")),
                "created_at": bucket.get("CreationDate"),
                "tags_json": _tags((tagging or {}).get("TagSet")),
            }
        )
    return by_region


def _dimension_value(record: dict[str, Any], dimension: str) -> str | None:
    if dimension == "InstanceId" and record["kind"] == "vm":
        return str(record["resource_id"])
    if dimension == "VolumeId" and record["kind"] == "volume" and record.get("provisioned_iops"):
        # Only volumes with provisioned IOPS are measured: the other volumes' operations
        # decide nothing, and CloudWatch queries are paid per metric.
        return str(record["resource_id"])
    if dimension == "DBInstanceIdentifier" and record["kind"] == "database":
        return str(record["resource_name"])
    if dimension == "LoadBalancer" and record["kind"] == "load_balancer":
        # CloudWatch names an ALB by the tail of its ARN: app/<name>/<id>.
        arn = str(record["resource_id"])
        return arn.split(":loadbalancer/", 1)[1] if ":loadbalancer/" in arn else None
    return None


def _metrics(
    cloudwatch: Any, records: list[dict[str, Any]], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = []
    meaning: dict[str, tuple[str, str, bool]] = {}
    for record in records:
        if record["kind"] == "vm" and record.get("state") != "running":
            continue
        for namespace, metric, stat, dimension, ours, per_second in AWS_METRICS:
            value = _dimension_value(record, dimension)
            if value is None:
                continue
            query_id = f"q{len(queries)}"
            meaning[query_id] = (str(record["resource_id"]), ours, per_second)
            queries.append(
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": dimension, "Value": value}],
                        },
                        "Period": _PERIOD,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    samples: list[dict[str, Any]] = []
    for offset in range(0, len(queries), _QUERIES_PER_CALL):
        batch = queries[offset : offset + _QUERIES_PER_CALL]
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": batch,
                "StartTime": start,
                "EndTime": end,
            }
            if token:
                kwargs["NextToken"] = token
            response = _call(
                partial(cloudwatch.get_metric_data, **kwargs), "cloudwatch get_metric_data"
            )
            for result in response.get("MetricDataResults", []):
                resource_id, ours, per_second = meaning[result["Id"]]
                for when, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=False
                ):
                    samples.append(
                        {
                            "resource_id": resource_id,
                            "timestamp": when.astimezone(UTC),
                            "metric": ours,
                            "value": float(value) / _PERIOD if per_second else float(value),
                        }
                    )
            token = response.get("NextToken")
            if not token:
                break
    return samples
