"""Rule test results as JUnit XML and SARIF 2.1.0."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from reclaim.rules import run_rule_tests
from reclaim.rules.reports import junit_xml, sarif

WriteYaml = Callable[..., Path]

RULES = """
rules:
  - {id: idle, when: cpu < 10}
tests:
  - {name: idle fires, fact: {cpu: 1}, fired: [idle]}
  - {name: "busy <fires> & fails", fact: {cpu: 50}, fired: [idle]}
"""


def test_junit_has_one_case_per_test_and_the_differences(write_yaml: WriteYaml) -> None:
    path = write_yaml(RULES, "savings.yaml")
    write_yaml("rules: [{id: x, when: 'x >'}]\n", "broken.yaml")
    report = run_rule_tests([path.parent])
    root = ET.fromstring(junit_xml(report))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    cases = root.findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == ["idle fires", "busy <fires> & fails", "load"]
    failure = cases[1].find("failure")
    assert failure is not None
    assert "- expected ['idle']" in (failure.text or "")
    assert cases[0].find("failure") is None
    assert cases[2].find("error") is not None


def test_sarif_has_a_result_per_failure(write_yaml: WriteYaml) -> None:
    path = write_yaml(RULES, "savings.yaml")
    write_yaml("rules: [{id: x, when: 'x >'}]\n", "broken.yaml")
    log = json.loads(json.dumps(sarif(run_rule_tests([path.parent]))))
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "reclaim"
    results = run["results"]
    assert [result["ruleId"] for result in results] == ["rule-file-error", "rule-test-failed"]
    broken = results[0]["locations"][0]["physicalLocation"]
    assert broken["artifactLocation"]["uri"].endswith("broken.yaml")
    assert broken["region"]["startLine"] == 1
    assert "busy <fires> & fails" in results[1]["message"]["text"]
    assert results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == str(path)
