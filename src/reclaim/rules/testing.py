"""Rule tests kept beside the rules, in the manner of ``opa test``.

A test gives a fact and what should come out: which rules fire, which must not, the values of
their actions, fields of the final context, the policy verdict. Tests live in the rule file's
``tests:`` section or in ``<name>.tests.yaml`` beside ``<name>.yaml``::

    rules: savings.yaml        # optional; default: this file's name without ".tests"
    tests:
      - name: an idle VM is flagged
        fact: {cpu_avg: 2, monthly_cost: 100}
        fired: [idle-vm]               # exactly these rules (order does not matter)
        not_fired: [busy-vm]
        actions: {idle-vm: {savings: 70.0}}   # only the keys given are compared
        context: {tier: gold}
        verdict: deny                  # "allow" also passes when no verdict fired

Host (impure) actions are never called by tests; their parameters are still compared. A failure
shows ``- expected`` and ``+ actual`` for every difference, not only the first.
"""

from __future__ import annotations

__all__ = [
    "RuleTestReport",
    "RuleTestResult",
    "find_rule_tests",
    "load_rule_tests",
    "run_rule_tests",
    "run_tests",
]

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules.actions import ActionRegistry
from reclaim.rules.checker import RuleChecker
from reclaim.rules.errors import RuleFileError, RuleSchemaError
from reclaim.rules.expression import DEFAULT_LIMITS
from reclaim.rules.loader import (
    RULE_SUFFIXES,
    TEST_SUFFIXES,
    find_rule_files,
    load_rules,
)
from reclaim.rules.ruleset import RuleSet, format_value
from reclaim.rules.source import DEFAULT_YAML_LIMITS, load_yaml, read_rule_file
from reclaim.rules.spec import RuleTestCase, RuleTestFileHeader


@dataclass(frozen=True)
class RuleTestResult:
    """One test's result; ``differences`` is empty when it passed."""

    source: str
    name: str
    differences: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.differences and self.error is None

    def render(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        lines = [f"{mark} {self.source}: {self.name}"]
        if self.error:
            lines.append(f"    error: {self.error}")
        lines.extend("    " + line for text in self.differences for line in text.splitlines())
        return "\n".join(lines)


@dataclass
class RuleTestReport:
    """All results of a test run, and the files that could not be loaded."""

    results: list[RuleTestResult] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.errors and all(result.passed for result in self.results)

    @property
    def failures(self) -> list[RuleTestResult]:
        return [result for result in self.results if not result.passed]

    def extend(self, other: RuleTestReport) -> None:
        self.results.extend(other.results)
        self.errors.extend(other.errors)

    def summary(self) -> str:
        failed = len(self.failures)
        text = f"{len(self.results) - failed} passed, {failed} failed"
        if self.errors:
            text += f", {len(self.errors)} errors"
        return text

    def render(self) -> str:
        lines = [str(error) for error in self.errors]
        lines.extend(result.render() for result in self.results)
        lines.append(self.summary())
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_show(item)}" for key, item in value.items()) + "}"
    return format_value(value)


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual if isinstance(expected, bool) else False
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(
            _same(e, a) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return set(expected) == set(actual) and all(
            _same(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


def _diff(what: str, expected: Any, actual: Any) -> str:
    return f"{what}:\n  - expected {_show(expected)}\n  + actual   {_show(actual)}"


_MISSING = object()


def check_case(ruleset: RuleSet, case: RuleTestCase, source: str) -> RuleTestResult:
    """Run one test case against ``ruleset``."""
    known = {rule.id for rule in ruleset.rules}
    referenced = [*(case.fired or []), *case.not_fired, *case.actions]
    unknown = sorted({rule_id for rule_id in referenced if rule_id not in known})
    if unknown:
        return RuleTestResult(
            source,
            case.name,
            error=f"the test names rules that do not exist: {', '.join(unknown)}",
        )
    schema = ruleset.schema
    if schema is not None:
        # A misspelt field in a test fact would silently be null and the test prove nothing.
        undeclared = [name for name in case.fact if name not in schema]
        if undeclared:
            hints = []
            for name in undeclared:
                close = schema.suggest(name)
                hints.append(f"{name!r} (did you mean {close!r}?)" if close else repr(name))
            return RuleTestResult(
                source,
                case.name,
                error="the fact has fields the rule set does not declare in 'facts': "
                + ", ".join(hints),
            )
    try:
        outcome = ruleset.evaluate(case.fact, now=case.now, run_actions=False)
    except Exception as exc:  # a test run reports a failing rule instead of stopping
        return RuleTestResult(source, case.name, error=f"{type(exc).__name__}: {exc}")
    fired = outcome.fired
    differences: list[str] = []
    if case.fired is not None and sorted(case.fired) != sorted(fired):
        differences.append(_diff("fired", case.fired, fired))
    wrongly = [rule_id for rule_id in case.not_fired if rule_id in fired]
    if wrongly:
        differences.append(_diff("not_fired", [], wrongly))
    by_rule = {match.rule_id: match for match in outcome.matches}
    for rule_id, expected in case.actions.items():
        match = by_rule.get(rule_id)
        if match is None:
            differences.append(_diff(f"actions.{rule_id}", expected, "(did not fire)"))
            continue
        produced = match.result if isinstance(match.result, Mapping) else match.params
        for key, value in expected.items():
            actual = produced.get(key, _MISSING)
            if actual is _MISSING:
                differences.append(_diff(f"actions.{rule_id}.{key}", value, "(not set)"))
            elif not _same(value, actual):
                differences.append(_diff(f"actions.{rule_id}.{key}", value, actual))
    for key, value in case.context.items():
        actual = outcome.context.get(key, _MISSING)
        if actual is _MISSING:
            differences.append(_diff(f"context.{key}", value, "(not set)"))
        elif not _same(value, actual):
            differences.append(_diff(f"context.{key}", value, actual))
    if case.verdict is not None:
        verdict = outcome.verdict
        if verdict != case.verdict and not (case.verdict == "allow" and verdict is None):
            differences.append(_diff("verdict", case.verdict, verdict))
    return RuleTestResult(source, case.name, tuple(differences))


def run_tests(
    ruleset: RuleSet, tests: Iterable[RuleTestCase], *, source: str | None = None
) -> RuleTestReport:
    """Run ``tests`` against ``ruleset``; ``source`` names them in the report."""
    label = source or ruleset.path or ruleset.name
    return RuleTestReport([check_case(ruleset, case, label) for case in tests])


def load_rule_tests(
    path: str | os.PathLike[str],
    *,
    actions: ActionRegistry | None = None,
    constants: Mapping[str, Any] | None = None,
) -> tuple[RuleSet, list[RuleTestCase]]:
    """Load a ``*.tests.yaml`` file and the rule file it tests."""
    test_path = Path(path)
    data_bytes = read_rule_file(test_path, DEFAULT_YAML_LIMITS.max_bytes, what="rule test file")
    document = load_yaml(data_bytes, str(test_path))
    checker = RuleChecker(document, actions=ActionRegistry(), constants={}, limits=DEFAULT_LIMITS)
    data = document.data
    if not isinstance(data, dict):
        raise RuleFileError(
            [
                RuleSchemaError(
                    "a rule test file must be a mapping with a 'tests:' list",
                    location=SourceLocation(str(test_path), 1, 1),
                    fix="start the file with 'tests:'",
                )
            ]
        )
    header = RuleTestFileHeader.read({key: value for key, value in data.items() if key != "tests"})
    if header is None:
        header = _validate_header(checker, data)
    tests = checker.check_tests(data.get("tests", []), ("tests",))
    if checker.errors or header is None:
        raise RuleFileError(checker.errors)
    rules_path = (
        test_path.parent / header.rules
        if header.rules
        else test_path.with_name(_rules_name_for(test_path.name))
    )
    if not rules_path.exists():
        raise RuleFileError(
            [
                ConfigError(
                    f"the rule file {str(rules_path)!r} tested here does not exist",
                    location=document.location(("rules",)),
                    fix="add 'rules: <file>' naming the rule file, relative to this one",
                )
            ]
        )
    ruleset = load_rules(rules_path, actions=actions, constants=constants)
    return ruleset, tests


def _validate_header(checker: RuleChecker, data: dict[Any, Any]) -> RuleTestFileHeader | None:
    """The test file's header validated by the pydantic model, every error recorded (the
    plain reader did not take it)."""
    from pydantic import ValidationError

    from reclaim.rules.model import RuleTestFileModel

    try:
        return RuleTestFileHeader.from_model(
            RuleTestFileModel.model_validate({**data, "tests": []})
        )
    except ValidationError as exc:
        checker.add_validation_errors(exc, (), RuleTestFileModel, "")
        return None


def _rules_name_for(test_name: str) -> str:
    for suffix in TEST_SUFFIXES:
        if test_name.endswith(suffix):
            return test_name.removesuffix(suffix) + suffix.removeprefix(".tests")
    return test_name


def find_rule_tests(
    paths: Iterable[str | os.PathLike[str]], *, suffixes: tuple[str, ...] = TEST_SUFFIXES
) -> list[Path]:
    """Every ``*.tests.yaml`` (or file ending in one of ``suffixes``) under ``paths``: files
    as given, folders searched recursively."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(
                candidate
                for candidate in sorted(path.rglob("*"))
                if candidate.is_file() and candidate.name.endswith(suffixes)
            )
        elif path.name.endswith(suffixes):
            found.append(path)
    return found


def run_rule_tests(
    paths: Sequence[str | os.PathLike[str]],
    *,
    actions: ActionRegistry | None = None,
    constants: Mapping[str, Any] | None = None,
) -> RuleTestReport:
    """Run every rule test under ``paths``: inline ``tests:`` sections of rule files and
    ``*.tests.yaml`` files. Files that fail to load are reported as errors."""
    report = RuleTestReport()
    rule_files = [
        path
        for path in find_rule_files(paths)
        if not path.name.endswith(TEST_SUFFIXES) and path.name.endswith(RULE_SUFFIXES)
    ]
    for path in rule_files:
        try:
            ruleset = load_rules(path, actions=actions, constants=constants)
        except RuleFileError as exc:
            report.errors.extend(exc.errors)
            continue
        report.extend(run_tests(ruleset, ruleset.tests, source=str(path)))
    test_files = find_rule_tests(paths)
    # A rule file named on its own brings the tests kept beside it.
    for path in rule_files:
        for suffix in TEST_SUFFIXES:
            sibling = path.with_name(path.name.removesuffix(path.suffix) + suffix)
            if sibling.is_file() and sibling not in test_files and path.suffix in suffix:
                test_files.append(sibling)
    for path in test_files:
        try:
            ruleset, tests = load_rule_tests(path, actions=actions, constants=constants)
        except RuleFileError as exc:
            report.errors.extend(
                error for error in exc.errors if not _already_reported(error, report)
            )
            continue
        report.extend(run_tests(ruleset, tests, source=str(path)))
    return report


def _already_reported(error: ConfigError, report: RuleTestReport) -> bool:
    return any(str(error) == str(seen) for seen in report.errors)
