"""Facts from planned changes: unknown stays unknown, sensitive never shows, clouds normalized."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.unit.policy.conftest import FIXTURES, SECRETS

from reclaim.policy import REDACTED, build_facts, load_plan, load_prices, parse_plan
from reclaim.policy.facts import summarize_actions
from reclaim.policy.resources import family_of


def _facts(name: str, expect: str = "plan") -> dict[str, dict[str, Any]]:
    plan = load_plan(FIXTURES / name, expect=expect)  # type: ignore[arg-type]
    return {fact["address"]: fact for fact in build_facts(plan, load_prices())}


@pytest.mark.parametrize(
    ("actions", "word"),
    [
        (["create"], "create"),
        (["delete", "create"], "replace"),
        (["create", "delete"], "replace"),
        (["no-op"], "no-op"),
        (["read"], "read"),
        (["delete"], "delete"),
    ],
)
def test_actions_are_summarized_in_one_word(actions: list[str], word: str) -> None:
    assert summarize_actions(actions) == word


def test_unknown_values_are_null_and_listed_not_empty() -> None:
    facts = _facts("aws_plan.json")
    cache = facts["aws_ebs_volume.cache"]
    # The owner tag is set from a value known only after apply: present, value unknown.
    assert cache["tags"] == {"cost-center": "cc-100", "owner": None}
    assert cache["tag_keys"] == ["cost-center", "owner"]
    assert "tags.owner" in cache["unknown"]
    assert cache["after"]["type"] is None
    assert "type" in cache["unknown"]
    assert cache["volume_types"] == []
    assert cache["encrypted"] is None
    assert cache["monthly_cost_after"] is None


def test_tags_that_are_wholly_unknown_are_unknown_not_missing() -> None:
    fragment = {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "aws_instance.a",
                "type": "aws_instance",
                "change": {
                    "actions": ["create"],
                    "after": {"tags": {"owner": "x"}},
                    "after_unknown": {"tags_all": True},
                },
            },
            {
                "address": "aws_instance.b",
                "type": "aws_instance",
                "change": {"actions": ["create"], "after": {"tags": None, "tags_all": None}},
            },
        ],
    }
    facts = build_facts(parse_plan(json.dumps(fragment)), load_prices())
    assert facts[0]["tags"] is None
    assert facts[0]["tag_keys"] is None
    assert facts[1]["tags"] == {}
    assert facts[1]["tag_keys"] == []


@pytest.mark.parametrize("name", ["aws_plan.json", "azure_plan.json", "gcp_plan.json"])
def test_sensitive_values_are_redacted_in_every_fact(name: str) -> None:
    facts = _facts(name)
    text = json.dumps(list(facts.values()), default=str)
    for secret in SECRETS:
        assert secret not in text
    assert REDACTED in text


def test_a_sensitive_attribute_reads_as_redacted_and_is_listed() -> None:
    db = _facts("aws_plan.json")["module.data.aws_db_instance.main"]
    assert db["after"]["password"] == REDACTED
    assert "password" in db["sensitive"]
    deleted = _facts("aws_plan.json")["aws_db_instance.billing"]
    assert deleted["before"]["password"] == REDACTED


def test_modules_and_providers() -> None:
    facts = _facts("aws_plan.json")
    blue = facts['module.app["blue"].aws_ebs_volume.data']
    assert blue["module"] == 'module.app["blue"]'
    assert blue["module_path"] == ["app"]
    assert blue["provider"] == "aws"
    assert blue["action"] == "replace"
    assert blue["action_reason"] == "replace_because_cannot_update"
    assert facts["data.aws_ami.ubuntu"]["taggable"] is False
    gcp = _facts("gcp_plan.json")["module.pool[0].google_compute_instance.node"]
    assert gcp["module_path"] == ["pool"]
    assert gcp["provider"] == "google"


def test_companions_are_linked_through_configuration_references() -> None:
    facts = _facts("aws_plan.json")
    # The ACL's bucket is unknown until apply; only the configuration links it.
    assert facts["aws_s3_bucket.logs"]["public"] is True
    assert facts["aws_s3_bucket.logs"]["has_lifecycle"] is False
    # The lifecycle configuration names the bucket by value.
    assert facts["aws_s3_bucket.archive"]["has_lifecycle"] is True
    assert facts["aws_s3_bucket.archive"]["public"] is False
    azure = _facts("azure_plan.json")["azurerm_storage_account.assets"]
    assert (azure["public"], azure["has_lifecycle"]) == (True, False)
    gcp = _facts("gcp_plan.json")
    assert gcp["google_storage_bucket.site"]["public"] is True
    assert gcp["google_storage_bucket.archive"]["public"] is False
    assert gcp["google_storage_bucket.archive"]["has_lifecycle"] is True


def test_sizes_families_and_costs_across_clouds() -> None:
    aws = _facts("aws_plan.json")
    db = aws["module.data.aws_db_instance.main"]
    assert (db["size"], db["family"], db["vcpus"], db["category"]) == (
        "db.r5.8xlarge",
        "db.r5",
        32,
        "database",
    )
    # db.r5.8xlarge at 4.00/h, 500 GB gp2 at 0.115, twice for multi-AZ.
    assert db["monthly_cost_after"] == pytest.approx((4.0 * 730 + 500 * 0.115) * 2)
    assert aws["aws_db_instance.billing"]["monthly_cost_delta"] == pytest.approx(
        -(0.171 * 730 + 100 * 0.115), abs=0.01
    )
    assert aws['module.app["blue"].aws_ebs_volume.data']["monthly_cost_delta"] == 0.0
    azure = _facts("azure_plan.json")["azurerm_postgresql_flexible_server.orders"]
    assert azure["family"] == "Ds_v3"
    assert azure["monthly_cost_delta"] == pytest.approx((1.424 * 2 - 0.356) * 730, abs=0.01)
    gcp = _facts("gcp_plan.json")["google_compute_instance.worker"]
    assert (gcp["family"], gcp["vcpus"], gcp["volume_types"]) == ("n1", 8, ["pd-ssd"])


def test_the_plan_fact_totals_the_costs() -> None:
    facts = _facts("aws_plan.json")
    plan = facts["(plan)"]
    resources = [fact for fact in facts.values() if fact["scope"] == "resource"]
    known = [fact["monthly_cost_delta"] for fact in resources if fact["monthly_cost_delta"]]
    assert plan["monthly_cost_delta"] == pytest.approx(sum(known), abs=0.01)
    assert plan["changes"] == 10
    assert plan["unpriced_changes"] == 1
    assert plan["cost_drivers"].startswith("module.data.aws_db_instance.main +5,955.00")


def test_a_state_gives_existing_resources() -> None:
    facts = _facts("aws_state.json", expect="state")
    worker = facts["aws_instance.old_worker"]
    assert worker["action"] == "existing"
    assert worker["tag_keys"] == ["Name"]
    assert worker["volume_types"] == ["gp2"]
    assert worker["encrypted"] is False


@pytest.mark.parametrize(
    ("provider", "size", "family"),
    [
        ("aws", "m7i.large", "m7i"),
        ("aws", "db.r5.8xlarge", "db.r5"),
        ("aws", "cache.m4.large", "cache.m4"),
        ("azurerm", "Standard_D4s_v3", "Ds_v3"),
        ("azurerm", "Standard_DS2_v2", "DS_v2"),
        ("azurerm", "Standard_E64-32s_v5", "Es_v5"),
        ("azurerm", "GP_Standard_D4s_v3", "Ds_v3"),
        ("azurerm", "Standard_B2ms", "Bms"),
        ("google", "n2-standard-4", "n2"),
        ("google", "custom-4-16384", "n1"),
        ("google", "db-custom-2-7680", "db-custom"),
        ("aws", "weird", None),
    ],
)
def test_families(provider: str, size: str, family: str | None) -> None:
    assert family_of(provider, size) == family
