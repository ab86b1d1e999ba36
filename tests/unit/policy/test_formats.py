"""The report in every format: structure, and no sensitive value anywhere."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from tests.unit.policy.conftest import FIXTURES, NOW, SECRETS

from reclaim.policy import PolicySet, Report, check_plan, load_plan
from reclaim.policy.formats import FORMATS, to_json, to_junit, to_markdown, to_sarif


def _report(name: str, pack: list[PolicySet]) -> Report:
    return check_plan(load_plan(FIXTURES / name), pack, now=NOW)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", ["aws_plan.json", "azure_plan.json", "gcp_plan.json"])
def test_no_secret_in_any_output(fmt: str, name: str, pack: list[PolicySet]) -> None:
    # The fixtures hold the secrets in plain text in 'variables' and in sensitive attributes.
    assert any(secret in (FIXTURES / name).read_text() for secret in SECRETS)
    text = FORMATS[fmt](_report(name, pack))
    for secret in SECRETS:
        assert secret not in text


def test_json(pack: list[PolicySet]) -> None:
    document = json.loads(to_json(_report("azure_plan.json", pack)))
    assert document["summary"] == {
        "result": "fail",
        "deny": 3,
        "warn": 2,
        "info": 0,
        "excepted": 1,
        "resources": 6,
        "changes": 6,
        "monthly_cost_delta": 1898.82,
    }
    excepted = next(f for f in document["findings"] if f["excepted"])
    assert excepted["excepted"] == {
        "address": None,
        "tag": "finops-approved",
        "expires": "2027-01-31",
        "reason": "",
    }
    assert excepted["failing"] is False
    assert excepted["explanation"]["tree"]["value"] is True
    assert "vcpus >= oversized_db_vcpus" in excepted["explanation"]["text"]


def test_sarif_2_1_0(pack: list[PolicySet]) -> None:
    report = _report("aws_plan.json", pack)
    document = json.loads(to_sarif(report))
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-2.1.0.json")
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "reclaim-policy"
    assert len(run["results"]) == len(report.findings)
    levels = {"error", "warning", "note"}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in levels
        assert result["message"]["text"]
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == report.source
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        assert location["logicalLocations"][0]["fullyQualifiedName"]
        assert len(result["partialFingerprints"]["reclaimFinding/v1"]) == 32
    fingerprints = [r["partialFingerprints"]["reclaimFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)
    gp2 = rules[[rule["id"] for rule in rules].index("no-gp2")]
    assert gp2["defaultConfiguration"]["level"] == "error"
    assert "gp3" in gp2["help"]["text"]


def test_sarif_marks_excepted_findings_as_suppressed(pack: list[PolicySet]) -> None:
    document = json.loads(to_sarif(_report("azure_plan.json", pack)))
    suppressed = [r for r in document["runs"][0]["results"] if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"] == [
        {"kind": "external", "justification": "exception by tag finops-approved (until 2027-01-31)"}
    ]


def test_junit(pack: list[PolicySet]) -> None:
    report = _report("azure_plan.json", pack)
    root = ET.fromstring(to_junit(report).split("\n", 1)[1])
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert root.get("failures") == "3" == suite.get("failures")
    assert int(suite.get("tests", "0")) == len(cases)
    assert suite.get("skipped") == "1"
    assert {case.get("name") for case in failures} == {
        "azurerm_linux_virtual_machine.api",
        "azurerm_managed_disk.data",
        "azurerm_storage_account.assets",
    }
    failure = failures[0].find("failure")
    assert failure is not None
    assert "why:" in (failure.text or "")
    # A rule that found nothing is one passing case.
    assert any(case.get("name") == "no-gp2" and len(case) == 0 for case in cases)


def test_markdown(pack: list[PolicySet]) -> None:
    text = to_markdown(_report("azure_plan.json", pack))
    assert "❌ **Policy check failed**: 3 deny, 2 warn, 0 info, 1 excepted" in text
    assert "Monthly cost change: **+1,898.82 USD**" in text
    assert "| ~~⚠️ warn~~" not in text
    assert "~~❌ deny~~ excepted" in text
    assert "<details><summary>Why each rule fired</summary>" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 6  # the header and one row per finding


def test_markdown_escapes_pipes_in_cells() -> None:
    from reclaim.policy.formats import _cell

    assert _cell("a|b\nc") == "a\\|b c"
