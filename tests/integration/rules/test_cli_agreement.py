"""``reclaim rules eval`` / ``explain`` on inputs that once printed Polars tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

USER_FORMAT = """\
rules:
  - id: complete
    condition: invoice_number and issue_date and vendor_id
  - id: has-number
    condition: invoice_number
  - id: dev
    condition: lower(env) == 'dev'
"""


def reclaim(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", "rules", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _write(tmp_path: Path, rules: str, facts: object) -> tuple[str, str]:
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(rules)
    facts_path = tmp_path / "facts.json"
    facts_path.write_text(json.dumps(facts))
    return str(rules_path), str(facts_path)


def test_eval_of_a_bare_condition_and_all_null_fields(tmp_path: Path) -> None:
    facts = [{"invoice_number": "A-1", "env": None}, {"invoice_number": None, "env": None}]
    rules, facts_path = _write(tmp_path, USER_FORMAT, facts)
    result = reclaim("eval", rules, facts_path, "--json")
    assert result.returncode == 0, result.stderr
    assert [(m["row"], m["rule_id"]) for m in json.loads(result.stdout)] == [(0, "has-number")]


def test_a_column_the_rules_cannot_use_is_one_line_naming_the_rule(tmp_path: Path) -> None:
    rules, facts_path = _write(tmp_path, "rules:\n  - {id: big, condition: x > 5}\n", [{"x": [1]}])
    result = reclaim("eval", rules, facts_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {rules}:2:")
    assert "rule 'big'" in lines[0]
    assert "'x > 5'" in lines[0]
    assert "declare" in lines[0]


def test_eval_warns_about_fields_no_fact_has(tmp_path: Path) -> None:
    rules, facts_path = _write(
        tmp_path, "rules:\n  - {id: typo, condition: invoice_numbr}\n", [{"invoice_number": 1}]
    )
    result = reclaim("eval", rules, facts_path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "warning:" in result.stderr
    assert "did you mean 'invoice_number'?" in result.stderr


def test_json_facts_carry_datetimes_as_iso_text(tmp_path: Path) -> None:
    rules_text = (
        "facts: {created: datetime}\nrules:\n  - {id: old, when: days_since(created) > 30}\n"
    )
    facts = [{"created": "2020-01-01T00:00:00Z"}, {"created": "2020-01-01"}, {"created": None}]
    rules, facts_path = _write(tmp_path, rules_text, facts)
    now = "2024-06-01T00:00:00"
    result = reclaim("eval", rules, facts_path, "--json", "--now", now)
    assert result.returncode == 0, result.stderr
    assert [m["row"] for m in json.loads(result.stdout)] == [0, 1]
    fact = '{"created": "2020-01-01T00:00:00Z"}'
    explained = reclaim("explain", rules, "--fact", fact, "--json", "--now", now)
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout)["fired"] == ["old"]


def test_rule_tests_write_junit_and_sarif(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {id: idle, when: cpu < 10}\n"
        "tests:\n  - {name: busy, fact: {cpu: 50}, fired: [idle]}\n"
    )
    junit, sarif = tmp_path / "out" / "junit.xml", tmp_path / "sarif.json"
    result = reclaim("test", str(rules), "--junit", str(junit), "--sarif", str(sarif))
    assert result.returncode == 2, result.stderr
    assert "cannot write the report" in result.stderr
    (tmp_path / "out").mkdir()
    result = reclaim("test", str(rules), "--junit", str(junit), "--sarif", str(sarif))
    assert result.returncode == 1, result.stderr
    assert '<testcase classname="' in junit.read_text()
    assert json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "rule-test-failed"
