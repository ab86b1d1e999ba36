"""Policy checks: reclaim's built-in pack beside the same policies in Rego, evaluated by OPA.

One synthetic plan of --changes resource changes (AWS instances, volumes, buckets with and
without lifecycle configurations, databases created, updated and deleted), written as
`terraform show -json` writes it. Each contestant starts from the JSON file and ends with its
findings:

- reclaim: `load_plan` + `check_plan` with the built-in pack (facts, rules, exceptions, and the
  rules engine's explanation of every finding);
- OPA: the same rules written in Rego (below), evaluated by `regopy` (OPA's Rego language in
  the rego-cpp interpreter, the Python binding OPA lists), with the price table as data and the
  plan as input.

Both must report the same (rule, address) pairs for the rules written in both, so a fast wrong
answer cannot win. Every figure is the median of --repeats runs.

Run: .venv/bin/python bench/policy_bench.py [--changes 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import regopy

from reclaim.policy import builtin_pack_path, check_plan, load_plan, load_policies, load_prices
from reclaim.policy.formats import to_json

INSTANCE_TYPES = [
    "m7i.large",
    "m4.xlarge",
    "t2.medium",
    "c7i.2xlarge",
    "x2iedn.32xlarge",
    "r6i.xlarge",
]
DB_CLASSES = ["db.t3.medium", "db.r5.8xlarge", "db.m6i.large", "db.r6i.4xlarge"]

REGO = r"""
package finops

import rego.v1

placing := {"create", "update", "replace"}
previous_generation := {"t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "i2", "d2",
  "g2", "g3", "p2", "x1", "db.t2", "db.m3", "db.m4", "db.r3", "db.r4"}
allowed_families := {"t3", "t3a", "t4g", "m5", "m5a", "m6i", "m6a", "m6g", "m7i", "m7a", "m7g", "c5",
  "c6i", "c6a", "c6g", "c7i", "c7a", "c7g", "r5", "r6i", "r6a", "r6g", "r7i", "r7a", "r7g"}
public_acls := {"public-read", "public-read-write", "authenticated-read"}
size_attribute := {"aws_instance": "instance_type", "aws_db_instance": "instance_class"}
catalog := {"aws_instance": "aws_ec2", "aws_db_instance": "aws_rds"}
categories := {"aws_instance": "compute", "aws_db_instance": "database", "aws_ebs_volume": "volume",
  "aws_s3_bucket": "bucket"}

action(rc) := "replace" if {
  "create" in rc.change.actions
  "delete" in rc.change.actions
} else := rc.change.actions[0]

tags(values) := t if {
  t := values.tags_all
  is_object(t)
  count(t) > 0
} else := t if {
  t := values.tags
  is_object(t)
} else := {}

size(rc) := rc.change.after[size_attribute[rc.type]]

family(rc) := concat(".", array.slice(parts, 0, 2)) if {
  parts := split(size(rc), ".")
  parts[0] == "db"
} else := split(size(rc), ".")[0]

vcpus(rc) := data.prices[catalog[rc.type]][size(rc)].vcpus

uses_gp2(rc) if {
  rc.type == "aws_ebs_volume"
  rc.change.after.type == "gp2"
}

uses_gp2(rc) if {
  rc.type == "aws_instance"
  some device in rc.change.after.root_block_device
  device.volume_type == "gp2"
}

uses_gp2(rc) if {
  rc.type == "aws_db_instance"
  rc.change.after.storage_type == "gp2"
}

storage_cost(kind, values, size_key, type_key, fallback) := data.prices[kind][object.get(values, type_key, fallback)].usd * values[size_key]

monthly(rc, values) := c if {
  rc.type == "aws_ebs_volume"
  c := storage_cost("aws_ebs", values, "size", "type", "gp2")
} else := c if {
  rc.type == "aws_db_instance"
  base := data.prices.aws_rds[values.instance_class].usd * 730 + storage_cost("aws_rds_storage", values, "allocated_storage", "storage_type", "gp2")
  c := base * (2 * to_number(object.get(values, "multi_az", false) == true) + to_number(object.get(values, "multi_az", false) != true))
} else := c if {
  rc.type == "aws_instance"
  c := data.prices.aws_ec2[values.instance_type].usd * 730 + sum([storage_cost("aws_ebs", d, "volume_size", "volume_type", "gp2") | some d in values.root_block_device])
}

delta(rc) := monthly(rc, rc.change.after) if {
  action(rc) == "create"
} else := 0 - monthly(rc, rc.change.before) if {
  action(rc) == "delete"
} else := monthly(rc, rc.change.after) - monthly(rc, rc.change.before)

lifecycle_buckets := {b |
  some rc in input.resource_changes
  rc.type == "aws_s3_bucket_lifecycle_configuration"
  b := rc.change.after.bucket
}

acl_buckets := {b |
  some rc in input.resource_changes
  rc.type == "aws_s3_bucket_acl"
  rc.change.after.acl in public_acls
  b := rc.change.after.bucket
}

taggable(rc) if {
  rc.mode == "managed"
  action(rc) in placing
  "tags" in object.keys(rc.change.after)
}

findings contains ["owner-tag-required", rc.address] if {
  some rc in input.resource_changes
  taggable(rc)
  not "owner" in object.keys(tags(rc.change.after))
}

findings contains ["cost-center-tag-required", rc.address] if {
  some rc in input.resource_changes
  taggable(rc)
  not "cost-center" in object.keys(tags(rc.change.after))
}

findings contains ["instance-family-allowed", rc.address] if {
  some rc in input.resource_changes
  categories[rc.type] == "compute"
  action(rc) in placing
  f := family(rc)
  not f in allowed_families
  not f in previous_generation
}

findings contains ["instance-size-allowed", rc.address] if {
  some rc in input.resource_changes
  categories[rc.type] == "compute"
  action(rc) in placing
  vcpus(rc) > 32
}

findings contains ["previous-generation", rc.address] if {
  some rc in input.resource_changes
  action(rc) in placing
  family(rc) in previous_generation
}

findings contains ["no-gp2", rc.address] if {
  some rc in input.resource_changes
  action(rc) in placing
  uses_gp2(rc)
}

findings contains ["unencrypted-storage", rc.address] if {
  some rc in input.resource_changes
  action(rc) in placing
  some key in ["encrypted", "storage_encrypted"]
  rc.change.after[key] == false
}

findings contains ["public-bucket", rc.address] if {
  some rc in input.resource_changes
  rc.type == "aws_s3_bucket"
  action(rc) in placing
  rc.change.after.bucket in acl_buckets
}

findings contains ["bucket-lifecycle", rc.address] if {
  some rc in input.resource_changes
  rc.type == "aws_s3_bucket"
  action(rc) in placing
  not rc.change.after.bucket in lifecycle_buckets
}

findings contains ["oversized-database", rc.address] if {
  some rc in input.resource_changes
  rc.type == "aws_db_instance"
  action(rc) in placing
  vcpus(rc) >= 16
}

findings contains ["protected-resource", rc.address] if {
  some rc in input.resource_changes
  action(rc) in {"delete", "replace"}
  lower(object.get(tags(rc.change.before), "protected", "")) in {"true", "yes", "1"}
}

findings contains ["stateful-deletion", rc.address] if {
  some rc in input.resource_changes
  action(rc) in {"delete", "replace"}
  categories[rc.type] in {"database", "bucket", "volume", "filesystem"}
  not lower(object.get(tags(rc.change.before), "protected", "")) in {"true", "yes", "1"}
}

total_delta := sum([d | some rc in input.resource_changes; d := delta(rc)])

findings contains ["monthly-cost-limit", "(plan)"] if total_delta > 5000
"""


def synthetic_plan(changes: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []

    def tags() -> dict[str, str]:
        value = {"owner": "team-" + str(rng.randrange(20))}
        if rng.random() < 0.8:
            value["cost-center"] = "cc-" + str(rng.randrange(50))
        return value

    def add(
        address: str, type_: str, actions: list[str], before: Any, after: Any, unknown: Any
    ) -> None:
        items.append(
            {
                "address": address,
                "mode": "managed",
                "type": type_,
                "name": address.split(".")[-1],
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": actions,
                    "before": before,
                    "after": after,
                    "after_unknown": unknown,
                    "before_sensitive": {} if before is not None else False,
                    "after_sensitive": {} if after is not None else False,
                },
            }
        )

    index = 0
    while len(items) < changes:
        kind = index % 5
        name = f"r{index}"
        if kind == 0:
            t = tags()
            after = {
                "instance_type": rng.choice(INSTANCE_TYPES),
                "tags": t,
                "tags_all": t,
                "root_block_device": [
                    {
                        "volume_type": rng.choice(["gp3", "gp2"]),
                        "volume_size": 20,
                        "encrypted": True,
                    }
                ],
            }
            add(
                f"aws_instance.{name}",
                "aws_instance",
                ["create"],
                None,
                after,
                {"id": True, "arn": True},
            )
        elif kind == 1:
            t = tags()
            after = {
                "size": rng.choice([20, 100, 500]),
                "type": rng.choice(["gp3", "gp2", "io2"]),
                "encrypted": rng.random() < 0.9,
                "tags": t,
                "tags_all": t,
            }
            add(f"aws_ebs_volume.{name}", "aws_ebs_volume", ["create"], None, after, {"id": True})
        elif kind == 2:
            t = tags()
            bucket = f"bucket-{index}"
            add(
                f"aws_s3_bucket.{name}",
                "aws_s3_bucket",
                ["create"],
                None,
                {"bucket": bucket, "tags": t, "tags_all": t},
                {"id": True, "arn": True},
            )
            if rng.random() < 0.5:
                add(
                    f"aws_s3_bucket_lifecycle_configuration.{name}",
                    "aws_s3_bucket_lifecycle_configuration",
                    ["create"],
                    None,
                    {"bucket": bucket, "rule": [{"id": "expire", "status": "Enabled"}]},
                    {"id": True},
                )
            if rng.random() < 0.05:
                add(
                    f"aws_s3_bucket_acl.{name}",
                    "aws_s3_bucket_acl",
                    ["create"],
                    None,
                    {"bucket": bucket, "acl": "public-read"},
                    {"id": True},
                )
        elif kind == 3:
            t = tags()
            values = {
                "instance_class": rng.choice(DB_CLASSES),
                "allocated_storage": 100,
                "storage_type": rng.choice(["gp3", "gp2"]),
                "storage_encrypted": True,
                "multi_az": rng.random() < 0.3,
                "tags": t,
                "tags_all": t,
            }
            after = dict(values, instance_class=rng.choice(DB_CLASSES))
            add(f"aws_db_instance.{name}", "aws_db_instance", ["update"], values, after, {})
        else:
            t = dict(tags(), protected="true" if rng.random() < 0.1 else "false")
            before = {"size": 100, "type": "gp3", "encrypted": True, "tags": t, "tags_all": t}
            add(f"aws_ebs_volume.{name}", "aws_ebs_volume", ["delete"], before, None, {})
        index += 1
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "planned_values": {},
        "resource_changes": items[:changes],
    }


def price_data() -> dict[str, Any]:
    prices: dict[str, dict[str, Any]] = {}
    text = (builtin_pack_path() / "prices.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    for row in rows:
        prices.setdefault(row["catalog"], {})[row["size"]] = {
            "usd": float(row["usd"]),
            "vcpus": int(row["vcpus"]) if row["vcpus"] else None,
        }
    return {"prices": prices}


def run_reclaim(path: Path, pack: Any, prices: Any) -> set[tuple[str, str]]:
    report = check_plan(load_plan(path), pack, prices=prices)
    return {(f.rule_id, f.address) for f in report.findings}


def run_opa(path: Path, data: str) -> set[tuple[str, str]]:
    rego = regopy.Interpreter()
    rego.add_module("finops", REGO)
    rego.add_data_json(data)
    rego.set_input_term(path.read_text())
    output = rego.query("x = data.finops.findings")
    document = json.loads(str(output))
    return {(rule, address) for rule, address in document["bindings"]["x"]}


def timed(function: Any, repeats: int) -> tuple[float, float, Any]:
    """Median wall time and median CPU time of this process (regopy evaluates in-process, so
    its C++ time counts too); CPU time is the steadier figure on a shared machine."""
    walls: list[float] = []
    cpus: list[float] = []
    result = None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--peer-changes", type=int, default=None, help="plan size for OPA (default: --changes)"
    )
    parser.add_argument("--peer-repeats", type=int, default=1)
    args = parser.parse_args()
    peer_changes = args.peer_changes or args.changes
    pack = load_policies([builtin_pack_path()])
    prices = load_prices()
    data = json.dumps(price_data())
    rows: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        plans: dict[int, Path] = {}
        for size in {args.changes, peer_changes}:
            plans[size] = Path(folder) / f"plan-{size}.json"
            plans[size].write_text(json.dumps(synthetic_plan(size)))
        size_mb = plans[args.changes].stat().st_size / 1e6

        def findings_only() -> set[tuple[str, str]]:
            return run_reclaim(plans[args.changes], pack, prices)

        def with_explanations() -> int:
            report = check_plan(load_plan(plans[args.changes]), pack, prices=prices)
            return len(to_json(report))

        wall, cpu, found = timed(findings_only, args.repeats)
        rows.append(("reclaim: findings", args.changes, wall, cpu))
        wall, cpu, _ = timed(with_explanations, args.repeats)
        rows.append(("reclaim: findings + explanations, JSON", args.changes, wall, cpu))
        wall, cpu, opa_found = timed(lambda: run_opa(plans[peer_changes], data), args.peer_repeats)
        rows.append(("OPA Rego via regopy (same rules)", peer_changes, wall, cpu))
        # The same plan size for both: OPA's findings against ours on that plan.
        ours_on_peer = run_reclaim(plans[peer_changes], pack, prices)
    shared = {rule for rule, _ in opa_found} | {"monthly-cost-limit"}
    mine = {pair for pair in ours_on_peer if pair[0] in shared}
    if mine != opa_found:
        only_ours = sorted(mine - opa_found)[:5]
        only_opa = sorted(opa_found - mine)[:5]
        raise SystemExit(f"the two disagree: only reclaim {only_ours}, only OPA {only_opa}")
    print(
        f"plan: {args.changes:,} resource changes, {size_mb:.1f} MB of JSON; {len(found):,} findings"
    )
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores, shared machine)"
    )
    print(f"{'contestant':<42}{'changes':>8}{'wall s':>9}{'CPU s':>9}{'changes/CPU s':>15}")
    for name, changes, wall, cpu in rows:
        print(f"{name:<42}{changes:>8,}{wall:>9.2f}{cpu:>9.2f}{changes / cpu:>15,.0f}")
    ours_rate = args.changes / rows[1][3]
    opa_rate = peer_changes / rows[2][3]
    print(
        f"ratio (changes per CPU second, with explanations): reclaim {ours_rate / opa_rate:.0f}x OPA; "
        f"both report the same {len(opa_found):,} findings on the {peer_changes:,}-change plan"
    )


if __name__ == "__main__":
    main()
