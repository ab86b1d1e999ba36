"""A check's report written for machines and people: JSON, SARIF 2.1.0, JUnit XML, Markdown.

Every format carries each finding's rule, effect, resource address, message, remediation and the
rules engine's explanation of why the rule fired. Facts hold sensitive values already redacted
(:mod:`reclaim.policy.values`), so nothing written here can show one.
"""

from __future__ import annotations

__all__ = ["FORMATS", "render", "to_json", "to_junit", "to_markdown", "to_sarif"]

import hashlib
import json
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree as ET

from reclaim import __version__
from reclaim.policy.check import Finding, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"deny": "error", "warn": "warning", "info": "note"}
_TOOL = "reclaim-policy"


def _exception_dict(finding: Finding) -> dict[str, Any] | None:
    exception = finding.excepted
    if exception is None:
        return None
    return {
        "address": exception.address,
        "tag": exception.tag,
        "expires": exception.expires.isoformat() if exception.expires else None,
        "reason": exception.reason,
    }


def finding_dict(finding: Finding) -> dict[str, Any]:
    """One finding as plain data."""
    return {
        "policy": finding.policy,
        "rule": finding.rule_id,
        "effect": finding.effect,
        "address": finding.address,
        "type": finding.resource_type,
        "module": finding.module,
        "action": finding.action,
        "message": finding.message,
        "remediation": finding.remediation,
        "description": finding.description,
        "rule_location": finding.location,
        "failing": finding.failing,
        "excepted": _exception_dict(finding),
        "note": finding.note,
        "explanation": {
            "text": finding.explanation.render(),
            "tree": finding.explanation.to_dict()["tree"],
        },
    }


def _summary(report: Report) -> dict[str, Any]:
    return {
        "result": "fail" if report.failed else "pass",
        "deny": report.count("deny"),
        "warn": report.count("warn"),
        "info": report.count("info"),
        "excepted": sum(1 for finding in report.findings if finding.excepted is not None),
        "resources": report.resources,
        "changes": report.counts.get("changes", 0),
        "monthly_cost_delta": report.monthly_cost_delta,
    }


def to_json(report: Report) -> str:
    """The report as JSON: the input, a summary and every finding."""
    document = {
        "version": 1,
        "tool": {"name": _TOOL, "version": __version__},
        "input": {
            "path": report.source,
            "kind": report.kind,
            "format_version": report.format_version,
            "terraform_version": report.terraform_version,
        },
        "policies": [policy.name for policy in report.policies],
        "summary": _summary(report),
        "findings": [finding_dict(finding) for finding in report.findings],
    }
    # Compact: the C encoder; with indent Python falls back to its pure-Python one, 8x slower.
    return json.dumps(document, default=str) + "\n"


def _fingerprint(finding: Finding) -> str:
    text = f"{finding.policy}\0{finding.rule_id}\0{finding.address}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def to_sarif(report: Report) -> str:
    """The report as SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, Azure DevOps).

    A plan has no source positions, so each result points at the plan file and names the
    resource as a logical location; the fingerprint (policy, rule, address) keeps an alert the
    same alert across runs.
    """
    rules: list[dict[str, Any]] = []
    rule_index: dict[tuple[str, str], int] = {}
    for policy in report.policies:
        for rule in policy.ruleset.rules:
            effect = _rule_effect(rule.params)
            rule_index[(policy.name, rule.id)] = len(rules)
            rules.append(
                {
                    "id": rule.id,
                    "name": rule.id.replace("-", " ").title().replace(" ", ""),
                    "shortDescription": {"text": rule.description or rule.id},
                    "fullDescription": {"text": rule.description or rule.id},
                    "help": {"text": _rule_help(rule.params) or rule.description or rule.id},
                    "defaultConfiguration": {"level": _SARIF_LEVEL.get(effect, "warning")},
                    "properties": {"policy": policy.name, "tags": ["finops", "terraform"]},
                }
            )
    results: list[dict[str, Any]] = []
    for finding in report.findings:
        text = finding.message
        if finding.remediation:
            text += f". Fix: {finding.remediation}"
        result: dict[str, Any] = {
            "ruleId": finding.rule_id,
            "level": _SARIF_LEVEL[finding.effect],
            "message": {"text": text},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": report.source},
                        "region": {"startLine": 1},
                    },
                    "logicalLocations": [
                        {
                            "fullyQualifiedName": finding.address,
                            "kind": "resource" if finding.address != "(plan)" else "module",
                        }
                    ],
                }
            ],
            "partialFingerprints": {"reclaimFinding/v1": _fingerprint(finding)},
            "properties": {
                "address": finding.address,
                "resourceType": finding.resource_type,
                "action": finding.action,
                "explanation": finding.explanation.render(),
            },
        }
        index = rule_index.get((finding.policy, finding.rule_id))
        if index is not None:
            result["ruleIndex"] = index
        if finding.excepted is not None:
            exception = finding.excepted
            by = f"address {exception.address}" if exception.address else f"tag {exception.tag}"
            justification = exception.reason or f"exception by {by}"
            if exception.expires:
                justification += f" (until {exception.expires.isoformat()})"
            result["suppressions"] = [{"kind": "external", "justification": justification}]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": _TOOL,
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"reclaim-policy/{report.source}"},
                "results": results,
            }
        ],
    }
    return json.dumps(document) + "\n"


def _rule_help(params: Any) -> str:
    remediation = params.get("remediation")
    value = getattr(remediation, "value", None)
    return value if isinstance(value, str) else ""


def _rule_effect(params: Any) -> str:
    effect = params.get("effect") or params.get("decision")
    value = getattr(effect, "value", None)
    return str(value) if value is not None else "warn"


def to_junit(report: Report) -> str:
    """The report as JUnit XML: a test suite per policy, a test case per rule and resource.

    A deny is a failure, an excepted deny is skipped with the exception, warn and info pass
    with their message as output; a rule that found nothing is one passing test case.
    """
    suites = ET.Element("testsuites", name="reclaim policy", tests="0", failures="0")
    total = failures = 0
    for policy in report.policies:
        by_rule: dict[str, list[Finding]] = {rule.id: [] for rule in policy.ruleset.rules}
        for finding in report.findings:
            if finding.policy == policy.name:
                by_rule.setdefault(finding.rule_id, []).append(finding)
        suite = ET.SubElement(suites, "testsuite", name=policy.name)
        suite_tests = suite_failures = skipped = 0
        for rule_id, findings in by_rule.items():
            if not findings:
                ET.SubElement(suite, "testcase", classname=policy.name, name=rule_id)
                suite_tests += 1
                continue
            for finding in findings:
                case = ET.SubElement(
                    suite, "testcase", classname=f"{policy.name}.{rule_id}", name=finding.address
                )
                suite_tests += 1
                body = _finding_text(finding)
                if finding.excepted is not None:
                    ET.SubElement(case, "skipped", message=f"excepted: {finding.message}")
                    skipped += 1
                elif finding.effect == "deny":
                    failure = ET.SubElement(case, "failure", message=finding.message, type="deny")
                    failure.text = body
                    suite_failures += 1
                else:
                    ET.SubElement(case, "system-out").text = f"[{finding.effect}] {body}"
        suite.set("tests", str(suite_tests))
        suite.set("failures", str(suite_failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        total += suite_tests
        failures += suite_failures
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _finding_text(finding: Finding) -> str:
    lines = [finding.message]
    if finding.remediation:
        lines.append(f"fix: {finding.remediation}")
    if finding.note:
        lines.append(f"note: {finding.note}")
    lines.append("why:")
    lines.append(finding.explanation.render())
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_MARK = {"deny": "❌ deny", "warn": "⚠️ warn", "info": "💬 info"}


def to_markdown(report: Report) -> str:
    """A summary for a pull-request comment: the verdict, a table, the explanations folded."""
    summary = _summary(report)
    verdict = "❌ **Policy check failed**" if report.failed else "✅ **Policy check passed**"
    cost = report.monthly_cost_delta
    lines = [
        "### reclaim policy check",
        "",
        f"{verdict}: {summary['deny']} deny, {summary['warn']} warn, {summary['info']} info"
        + (f", {summary['excepted']} excepted" if summary["excepted"] else "")
        + f" on {summary['changes']} change(s) of `{report.source}`."
        + (f" Monthly cost change: **{cost:+,.2f} USD**." if cost is not None else ""),
        "",
    ]
    if report.findings:
        lines += ["| effect | rule | resource | message | fix |", "|---|---|---|---|---|"]
        for finding in report.findings:
            effect = _MARK[finding.effect]
            if finding.excepted is not None:
                effect = f"~~{effect}~~ excepted"
            message = finding.message + (f" ({finding.note})" if finding.note else "")
            lines.append(
                f"| {effect} | `{finding.rule_id}` | `{_cell(finding.address)}` | "
                f"{_cell(message)} | {_cell(finding.remediation or '')} |"
            )
        lines += ["", "<details><summary>Why each rule fired</summary>", ""]
        for finding in report.findings:
            lines += [
                f"**{finding.rule_id}** on `{finding.address}`",
                "",
                "```text",
                finding.explanation.render(),
                "```",
                "",
            ]
        lines.append("</details>")
    else:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"


#: Format name → writer; the table is drawn by the command line (Rich).
FORMATS: dict[str, Callable[[Report], str]] = {
    "json": to_json,
    "sarif": to_sarif,
    "junit": to_junit,
    "markdown": to_markdown,
}


def render(report: Report, format_name: str) -> str:
    """The report in ``format_name`` (one of :data:`FORMATS`)."""
    return FORMATS[format_name](report)
