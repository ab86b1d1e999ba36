"""Rule test results in the formats CI systems read: JUnit XML and SARIF 2.1.0.

JUnit XML is what GitLab, Jenkins and most CI test tabs show; SARIF is what GitHub code
scanning (and editors) turn into annotations on the file. Both come from one
:class:`~reclaim.rules.testing.RuleTestReport`: each rule test is a test case, a failing test a
failure with every difference, and a file that could not be loaded an error.
"""

from __future__ import annotations

__all__ = ["junit_xml", "sarif"]

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from reclaim import __version__
from reclaim.errors import ConfigError
from reclaim.rules.testing import RuleTestReport, RuleTestResult

_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _failure_text(result: RuleTestResult) -> str:
    lines = [result.error] if result.error else []
    lines.extend(result.differences)
    return "\n".join(lines)


def junit_xml(report: RuleTestReport) -> str:
    """The report as JUnit XML: one ``testsuite`` per file, one ``testcase`` per rule test."""
    by_source: dict[str, list[RuleTestResult]] = defaultdict(list)
    for result in report.results:
        by_source[result.source].append(result)
    root = ET.Element(
        "testsuites",
        name="reclaim rules test",
        tests=str(len(report.results) + len(report.errors)),
        failures=str(sum(1 for r in report.results if not r.passed and r.error is None)),
        errors=str(len(report.errors) + sum(1 for r in report.results if r.error)),
    )
    for source, results in by_source.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=source,
            tests=str(len(results)),
            failures=str(sum(1 for r in results if not r.passed and r.error is None)),
            errors=str(sum(1 for r in results if r.error)),
        )
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=source, name=result.name)
            if result.error:
                ET.SubElement(case, "error", message=result.error).text = _failure_text(result)
            elif not result.passed:
                first = result.differences[0].splitlines()[0] if result.differences else ""
                ET.SubElement(case, "failure", message=first).text = _failure_text(result)
    if report.errors:
        suite = ET.SubElement(
            root,
            "testsuite",
            name="rule files that could not be loaded",
            tests=str(len(report.errors)),
            failures="0",
            errors=str(len(report.errors)),
        )
        for error in report.errors:
            where = str(error.location) if error.location else "rules"
            case = ET.SubElement(suite, "testcase", classname=where, name="load")
            ET.SubElement(case, "error", message=error.message).text = str(error)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _location(path: str, line: int | None = None, column: int | None = None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": path}}
    if line is not None:
        region: dict[str, Any] = {"startLine": line}
        if column is not None:
            region["startColumn"] = column
        physical["region"] = region
    return {"physicalLocation": physical}


def _error_result(error: ConfigError) -> dict[str, Any]:
    location = error.location
    text = error.message + (f"; {error.fix}" if error.fix else "")
    result: dict[str, Any] = {
        "ruleId": "rule-file-error",
        "level": "error",
        "message": {"text": text},
    }
    if location is not None:
        result["locations"] = [_location(location.path, location.line, location.column)]
    return result


def sarif(report: RuleTestReport) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (plain data; ``json.dumps`` it): one result per failing
    rule test and per file that could not be loaded. Passing tests produce no result."""
    results: list[dict[str, Any]] = [_error_result(error) for error in report.errors]
    for test in report.results:
        if test.passed:
            continue
        results.append(
            {
                "ruleId": "rule-test-failed",
                "level": "error",
                "message": {"text": f"rule test {test.name!r} failed:\n{_failure_text(test)}"},
                "locations": [_location(test.source)],
            }
        )
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "reclaim",
                        "version": __version__,
                        "rules": [
                            {
                                "id": "rule-test-failed",
                                "shortDescription": {"text": "A rule test did not pass"},
                            },
                            {
                                "id": "rule-file-error",
                                "shortDescription": {"text": "A rule file could not be loaded"},
                            },
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
