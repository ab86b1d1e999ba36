"""Checking plans: the findings of the built-in pack on each cloud, exceptions, explanations."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from tests.unit.policy.conftest import FIXTURES, NOW

from reclaim.errors import ConfigError
from reclaim.policy import PolicySet, check_plan, load_plan, load_policies, parse_plan
from reclaim.rules import RuleFileError


def _pairs(name: str, pack: list[PolicySet], expect: str = "plan") -> set[tuple[str, str, str]]:
    report = check_plan(load_plan(FIXTURES / name, expect=expect), pack, now=NOW)  # type: ignore[arg-type]
    return {
        (f.effect if f.excepted is None else "excepted", f.rule_id, f.address)
        for f in report.findings
    }


def test_aws_plan(pack: list[PolicySet]) -> None:
    assert _pairs("aws_plan.json", pack) == {
        ("deny", "monthly-cost-limit", "(plan)"),
        ("deny", "protected-resource", "aws_db_instance.billing"),
        ("deny", "cost-center-tag-required", "aws_ebs_volume.scratch"),
        ("deny", "no-gp2", "aws_ebs_volume.scratch"),
        ("deny", "unencrypted-storage", "aws_ebs_volume.scratch"),
        ("deny", "public-bucket", "aws_s3_bucket.logs"),
        ("deny", "no-gp2", "module.data.aws_db_instance.main"),
        ("deny", "oversized-database", "module.data.aws_db_instance.main"),
        ("deny", "unencrypted-storage", "module.data.aws_db_instance.main"),
        ("deny", "cost-center-tag-required", "module.legacy.aws_instance.app"),
        ("deny", "previous-generation", "module.legacy.aws_instance.app"),
        ("warn", "bucket-lifecycle", "aws_s3_bucket.logs"),
        ("warn", "stateful-deletion", 'module.app["blue"].aws_ebs_volume.data'),
        ("info", "unpriced-changes", "(plan)"),
    }


def test_azure_plan(pack: list[PolicySet]) -> None:
    assert _pairs("azure_plan.json", pack) == {
        ("deny", "instance-family-allowed", "azurerm_linux_virtual_machine.api"),
        ("deny", "owner-tag-required", "azurerm_managed_disk.data"),
        ("deny", "public-bucket", "azurerm_storage_account.assets"),
        ("excepted", "oversized-database", "azurerm_postgresql_flexible_server.orders"),
        ("warn", "monthly-cost-increase", "(plan)"),
        ("warn", "bucket-lifecycle", "azurerm_storage_account.assets"),
    }


def test_gcp_plan(pack: list[PolicySet]) -> None:
    assert _pairs("gcp_plan.json", pack) == {
        ("deny", "protected-resource", "google_compute_disk.ledger"),
        ("deny", "cost-center-tag-required", "google_compute_instance.worker"),
        ("deny", "previous-generation", "google_compute_instance.worker"),
        ("deny", "oversized-database", "google_sql_database_instance.orders"),
        ("deny", "public-bucket", "google_storage_bucket.site"),
        ("warn", "monthly-cost-increase", "(plan)"),
        ("warn", "stateful-deletion", "google_sql_database_instance.orders"),
        ("warn", "bucket-lifecycle", "google_storage_bucket.site"),
        ("info", "unpriced-changes", "(plan)"),
    }


def test_a_state_is_checked_for_what_is_deployed(pack: list[PolicySet]) -> None:
    pairs = _pairs("aws_state.json", pack, expect="state")
    assert ("deny", "previous-generation", "aws_instance.old_worker") in pairs
    assert ("deny", "owner-tag-required", "aws_instance.old_worker") in pairs
    # Nothing is deleted by a state: no deletion rules.
    assert not any(rule in ("protected-resource", "stateful-deletion") for _, rule, _ in pairs)


def test_every_finding_carries_the_engines_explanation(pack: list[PolicySet]) -> None:
    report = check_plan(load_plan(FIXTURES / "aws_plan.json"), pack, now=NOW)
    for finding in report.findings:
        assert finding.explanation.rule_id == finding.rule_id
        assert finding.explanation.fired
        assert finding.location is not None
    gp2 = next(f for f in report.findings if f.rule_id == "no-gp2")
    assert "'gp2' in volume_types" in gp2.explanation.render()


def test_exit_codes(pack: list[PolicySet]) -> None:
    report = check_plan(load_plan(FIXTURES / "aws_plan.json"), pack, now=NOW)
    assert report.failed
    assert report.exit_code() == 1
    assert report.exit_code(warn_only=True) == 0


def _policy(tmp_path: Path, body: str) -> list[PolicySet]:
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return load_policies([path])


_ONE_VOLUME = json.dumps(
    {
        "format_version": "1.2",
        "resource_changes": [
            {
                "address": "module.legacy.aws_ebs_volume.v",
                "module_address": "module.legacy",
                "type": "aws_ebs_volume",
                "name": "v",
                "change": {
                    "actions": ["create"],
                    "after": {"type": "gp2", "size": 1, "tags": {"approved": "yes"}},
                },
            }
        ],
    }
)

_RULE = """
kind: policy
rules:
  - id: no-gp2
    when: "'gp2' in volume_types"
    action: finding
    params:
      effect: deny
      message: "{address} uses gp2"
      exceptions:
"""


def _at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.UTC)


def test_an_address_exception_holds_until_its_last_day(tmp_path: Path) -> None:
    policies = _policy(
        tmp_path,
        _RULE + "        - {address: 'module.legacy.*', expires: 2027-01-31, reason: old}\n",
    )
    plan = parse_plan(_ONE_VOLUME)
    held = check_plan(plan, policies, now=_at("2027-01-31T23:00:00")).findings[0]
    assert held.excepted is not None
    assert held.excepted.reason == "old"
    assert not held.failing
    expired = check_plan(plan, policies, now=_at("2027-02-01T00:00:00")).findings[0]
    assert expired.excepted is None
    assert expired.failing
    assert expired.note == "the exception for 'module.legacy.*' expired on 2027-01-31"


def test_an_address_pattern_must_match_the_whole_address(tmp_path: Path) -> None:
    policies = _policy(tmp_path, _RULE + "        - {address: 'legacy', expires: 2099-01-01}\n")
    finding = check_plan(parse_plan(_ONE_VOLUME), policies, now=NOW).findings[0]
    assert finding.excepted is None


def test_an_approval_tag_that_is_not_a_date_does_not_apply(tmp_path: Path) -> None:
    policies = _policy(tmp_path, _RULE + "        - {tag: approved}\n")
    finding = check_plan(parse_plan(_ONE_VOLUME), policies, now=NOW).findings[0]
    assert finding.excepted is None
    assert finding.note is not None
    assert "approval tag 'approved' is 'yes', not an expiry date" in finding.note


def test_an_approval_tag_with_its_own_expiry(tmp_path: Path) -> None:
    policies = _policy(tmp_path, _RULE + "        - {tag: approved, expires: 2027-01-01}\n")
    finding = check_plan(parse_plan(_ONE_VOLUME), policies, now=NOW).findings[0]
    assert finding.excepted is not None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{address: 'a.*'}", "an address exception needs 'expires'"),
        ("{address: 'a.*', tag: x, expires: 2027-01-01}", "give either 'address' or 'tag'"),
        ("{tag: x, expires: soon}", "'expires' is 'soon', not a date"),
    ],
)
def test_bad_exceptions_are_refused_when_loading(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        _policy(tmp_path, _RULE + f"        - {entry}\n")
    text = str(caught.value.errors[0])
    assert message in text
    assert text.startswith(f"{tmp_path / 'p.yaml'}:4:")


def test_a_bad_effect_is_a_load_error_with_file_and_line(tmp_path: Path) -> None:
    body = _RULE.replace("effect: deny", "effect: block").replace("      exceptions:\n", "")
    with pytest.raises(RuleFileError) as caught:
        _policy(tmp_path, body)
    assert "p.yaml:8:" in str(caught.value)
    assert "'block' is not one of 'deny', 'warn', 'info'" in str(caught.value)


def test_verdict_rules_and_rules_without_action(tmp_path: Path) -> None:
    policies = _policy(
        tmp_path,
        """
kind: policy
rules:
  - id: denied
    when: "'gp2' in volume_types"
    action: verdict
    params: {decision: deny, message: "{address} is gp2"}
  - id: allowed
    when: "true"
    action: verdict
    params: {decision: allow}
  - id: noted
    when: "scope == 'resource'"
""",
    )
    report = check_plan(parse_plan(_ONE_VOLUME), policies, now=NOW)
    assert [(f.rule_id, f.effect, f.message) for f in report.findings] == [
        ("denied", "deny", "module.legacy.aws_ebs_volume.v is gp2"),
        ("noted", "info", "noted fired for module.legacy.aws_ebs_volume.v"),
    ]


def test_missing_rules_folder_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="no such file or folder"):
        load_policies([tmp_path / "missing"])
    with pytest.raises(RuleFileError, match=r"no policy files \(\*.yaml\) found"):
        load_policies([tmp_path])


def test_the_price_table_can_be_replaced(tmp_path: Path, pack: list[PolicySet]) -> None:
    from reclaim.policy import load_prices

    prices = tmp_path / "prices.csv"
    prices.write_text("catalog,size,unit,usd,vcpus\naws_ebs,gp2,gb-month,1000,\n")
    report = check_plan(parse_plan(_ONE_VOLUME), pack, prices=load_prices(prices), now=NOW)
    assert report.monthly_cost_delta == 1000.0
    prices.write_text("catalog,size,unit,usd\naws_ebs,gp2,per-day,1\n")
    with pytest.raises(ConfigError, match=r"prices.csv:2: unit 'per-day'"):
        load_prices(prices)


def test_explanations_in_ordered_mode_see_what_earlier_rules_set(tmp_path: Path) -> None:
    policies = _policy(
        tmp_path,
        """
kind: policy
mode: ordered
rules:
  - id: mark
    when: "'gp2' in volume_types"
    action: set
    params: {tier: "'old'"}
  - id: flag
    when: "tier == 'old'"
    action: finding
    params: {effect: warn, message: "{address} is {tier}"}
""",
    )
    (finding,) = check_plan(parse_plan(_ONE_VOLUME), policies, now=NOW).findings
    assert finding.message == "module.legacy.aws_ebs_volume.v is old"
    assert finding.explanation.fired
    assert "tier == 'old'  → 'old' == 'old' ✓" in finding.explanation.render()


def test_the_explanation_is_the_fired_rules_only(pack: list[PolicySet]) -> None:
    report = check_plan(load_plan(FIXTURES / "aws_plan.json"), pack, now=NOW)
    finding = next(f for f in report.findings if f.rule_id == "public-bucket")
    explanation = finding.explanation
    assert explanation is finding.explanation  # computed once
    assert explanation.to_dict()["rule_id"] == "public-bucket"
    assert explanation.params is not None
    assert explanation.params["effect"] == "deny"
