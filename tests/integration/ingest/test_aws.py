"""The AWS collector against moto: the same calls a real account answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from reclaim.errors import ExecutionError
from reclaim.ingest import collect_aws, validate_facts

REGION = "us-east-1"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=REGION,
        )


def _estate(session: Any) -> dict[str, str]:
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "owner", "Value": "payments"}]}]
    busy, idle, stopped = (
        ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType=kind, TagSpecifications=tags
        )["Instances"][0]["InstanceId"]
        for kind in ("m5.xlarge", "m4.large", "c5.2xlarge")
    )
    ec2.stop_instances(InstanceIds=[stopped])
    zone = f"{REGION}a"
    loose = ec2.create_volume(AvailabilityZone=zone, Size=100, VolumeType="gp2")["VolumeId"]
    used = ec2.create_volume(AvailabilityZone=zone, Size=20, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=used, InstanceId=busy, Device="/dev/sdf")
    snapshot = ec2.create_snapshot(VolumeId=loose)["SnapshotId"]
    free_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    used_ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used_ip, InstanceId=busy)

    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = session.client("elbv2")
    lb = elbv2.create_load_balancer(Name="idle-lb", Subnets=subnets, Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": "team", "Value": "search"}])
    group = elbv2.create_target_group(Name="tg", Protocol="HTTP", Port=80, VpcId=vpc)
    group_arn = group["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )

    rds = session.client("rds")
    database = rds.create_db_instance(
        DBInstanceIdentifier="orders",
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        AllocatedStorage=50,
        MasterUsername="admin",
        MasterUserPassword="secret-password",
        Tags=[{"Key": "owner", "Value": "orders-team"}],
    )["DBInstance"]["DBInstanceArn"]

    s3 = session.client("s3")
    s3.create_bucket(Bucket="logs-without-lifecycle")
    s3.create_bucket(Bucket="logs-with-lifecycle")
    s3.put_bucket_lifecycle_configuration(
        Bucket="logs-with-lifecycle",
        LifecycleConfiguration={
            "Rules": [
                {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""},
                 "Expiration": {"Days": 30}}
            ]
        },
    )  # fmt: skip
    s3.put_bucket_tagging(
        Bucket="logs-with-lifecycle", Tagging={"TagSet": [{"Key": "team", "Value": "data"}]}
    )
    s3.create_bucket(
        Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )

    cloudwatch = session.client("cloudwatch")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for hours in range(1, 25):
        cloudwatch.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "DatabaseConnections",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders"}],
                    "Timestamp": now - timedelta(hours=hours),
                    "Value": 0.0,
                    "Unit": "Count",
                }
            ],
        )
    for hours in range(1, 25):
        when = now - timedelta(hours=hours)
        for instance, cpu in ((busy, 60.0), (idle, 1.0)):
            cloudwatch.put_metric_data(
                Namespace="AWS/EC2",
                MetricData=[
                    {
                        "MetricName": "CPUUtilization",
                        "Dimensions": [{"Name": "InstanceId", "Value": instance}],
                        "Timestamp": when,
                        "Value": cpu,
                        "Unit": "Percent",
                    },
                    {
                        "MetricName": "NetworkIn",
                        "Dimensions": [{"Name": "InstanceId", "Value": instance}],
                        "Timestamp": when,
                        "Value": 3600.0 * (1000 if cpu > 50 else 1),
                        "Unit": "Bytes",
                    },
                ],
            )
    return {
        "busy": busy,
        "idle": idle,
        "stopped": stopped,
        "loose": loose,
        "used": used,
        "snapshot": snapshot,
        "free_ip": free_ip,
        "used_ip": used_ip,
        "lb": lb_arn,
        "database": database,
    }


def test_collects_the_estate_into_facts(session: Any) -> None:
    ids = _estate(session)
    collection = collect_aws(session, regions=[REGION], days=2)
    facts = collection.facts
    validate_facts(facts)
    rows = {row["resource_id"]: row for row in facts.iter_rows(named=True)}
    assert set(ids.values()) <= set(rows)

    busy, idle, stopped = rows[ids["busy"]], rows[ids["idle"]], rows[ids["stopped"]]
    assert (busy["kind"], busy["state"], busy["instance_type"]) == ("vm", "running", "m5.xlarge")
    assert busy["owner"] == "payments"
    assert busy["cpu_avg"] == pytest.approx(60.0)
    assert busy["network_avg"] == pytest.approx(1000.0)  # bytes per hour → per second
    assert idle["cpu_p95"] == pytest.approx(1.0)
    assert idle["previous_generation"] is True
    assert stopped["state"] == "stopped"
    assert stopped["samples"] == 0
    assert stopped["state_changed_at"] is not None
    assert stopped["attached_volume_count"] >= 1  # its root volume

    loose, used = rows[ids["loose"]], rows[ids["used"]]
    assert (loose["kind"], loose["attached"], loose["volume_type"]) == ("volume", False, "gp2")
    assert loose["size_gb"] == 100.0
    assert (used["attached"], used["attached_to"]) == (True, ids["busy"])

    snapshot = rows[ids["snapshot"]]
    assert (snapshot["kind"], snapshot["source_volume_id"]) == ("snapshot", ids["loose"])
    assert snapshot["used_by_image"] is False

    assert rows[ids["free_ip"]]["attached"] is False
    assert rows[ids["used_ip"]]["attached"] is True
    assert rows[ids["used_ip"]]["kind"] == "ip_address"

    lb = rows[ids["lb"]]
    assert (lb["kind"], lb["target_count"], lb["attached"]) == ("load_balancer", 0, False)
    assert lb["owner"] == "search"
    assert lb["tags"]["team"] == "search"

    db = rows[ids["database"]]
    assert (db["kind"], db["instance_type"], db["engine"]) == (
        "database",
        "db.r5.large",
        "postgres",
    )
    assert (db["size_down"], db["size_gb"], db["owner"]) == ("db.r5.medium", 50.0, "orders-team")
    assert (db["connections_max"], db["samples"]) == (0.0, 24)

    assert rows["logs-without-lifecycle"]["lifecycle_policy"] is False
    assert rows["logs-with-lifecycle"]["lifecycle_policy"] is True
    assert rows["logs-with-lifecycle"]["kind"] == "bucket"
    assert rows["logs-with-lifecycle"]["owner"] == "data"
    assert "elsewhere" not in rows  # a bucket in a region we were not asked for

    assert all(row["provider"] == "aws" and row["region"] == REGION for row in rows.values())
    assert all(row["account_id"] for row in rows.values())
    assert not any(row["in_bill"] for row in rows.values())
    assert collection.report.sources == [f"aws:{REGION}"]


def test_empty_account(session: Any) -> None:
    collection = collect_aws(session, regions=[REGION, "eu-west-1"], days=1)
    # moto's default estate has no instances, volumes, addresses or load balancers of ours.
    assert collection.facts.filter(collection.facts["kind"] != "snapshot").height == 0


class _DeniedSession:
    """A session whose every client refuses, as an account without the read permissions does."""

    def __init__(self) -> None:
        self.stubbers: list[Stubber] = []

    def client(self, service: str, region_name: str = REGION) -> Any:
        client = boto3.client(
            service,
            region_name=region_name,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        stubber = Stubber(client)
        stubber.add_client_error(
            "get_caller_identity", service_error_code="AccessDenied", http_status_code=403
        )
        stubber.activate()
        self.stubbers.append(stubber)
        return client


def test_api_failure_is_an_execution_error() -> None:
    with pytest.raises(ExecutionError, match=r"AWS sts call failed.*AccessDenied") as raised:
        collect_aws(_DeniedSession(), regions=[REGION], days=1)
    assert "Describe" in str(raised.value)


def test_costs_from_a_focus_export_join_on_resource_id(session: Any, tmp_path: Path) -> None:
    ids = _estate(session)
    now = datetime.now(UTC).replace(microsecond=0)
    day = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    next_day = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bill = tmp_path / "focus.csv"
    bill.write_text(
        "BilledCost,EffectiveCost,ChargePeriodStart,ChargePeriodEnd,ResourceId,ServiceName,"
        "BillingCurrency\n"
        f"12.5,10,{day},{next_day},{ids['idle']},Amazon Elastic Compute Cloud,USD\n"
        f"3,3,{day},{next_day},logs-without-lifecycle,Amazon Simple Storage Service,USD\n"
    )
    collection = collect_aws(session, regions=[REGION], days=2, billing=[bill], now=now)
    rows = {row["resource_id"]: row for row in collection.facts.iter_rows(named=True)}
    idle = rows[ids["idle"]]
    assert (idle["cost_30d"], idle["billed_cost_30d"], idle["in_bill"]) == (10.0, 12.5, True)
    assert idle["in_inventory"] is True
    assert rows["logs-without-lifecycle"]["cost_30d"] == 3.0
    assert rows[ids["busy"]]["cost_30d"] == 0.0
    assert collection.report.sources == ["billing", f"aws:{REGION}"]
