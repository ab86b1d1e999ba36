"""Policy tests, in the manner of ``opa test``: plan fragments in, expected verdicts out.

``reclaim policy test DIR`` runs two kinds of test found under DIR:

- the rules engine's own fact tests (a policy file's ``tests:`` and ``<name>.tests.yaml``), which
  feed one fact to the rules;
- plan tests, in files named ``*_test.yaml``: each gives a fragment of ``terraform show -json``
  output (or a plan file) and the rules expected to deny, warn or inform::

      policies: finops.yaml          # default: every policy file in this folder
      tests:
        - name: a gp2 volume is denied
          now: 2026-12-01            # the date rules and exception expiries see
          plan:                      # or plan_file: plans/gp2.json (relative to this file)
            resource_changes:
              - address: aws_ebs_volume.data
                type: aws_ebs_volume
                change: {actions: [create], after: {type: gp2, size: 10}}
          deny: [no-gp2]             # exactly these rules deny (each list is optional)
          warn: []
          info: []
          excepted: []               # rules whose finding an exception waived
          verdict: fail              # fail (a deny stands) or pass

A fragment needs only what the rules read: ``format_version``, ``mode``, ``name`` and
``provider_name`` are filled in when left out. The results are the rules engine's
:class:`~reclaim.rules.RuleTestReport`, so both kinds print the same way.
"""

from __future__ import annotations

__all__ = ["find_plan_tests", "run_policy_tests"]

import datetime
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reclaim.errors import ConfigError, SourceLocation
from reclaim.policy.check import Report, check_plan
from reclaim.policy.plan import parse_plan
from reclaim.policy.policies import (
    PLAN_TEST_SUFFIXES,
    POLICY_ACTIONS,
    PolicySet,
    find_policy_files,
    load_policies,
)
from reclaim.policy.pricing import PriceTable, load_prices
from reclaim.rules import (
    RuleFileError,
    RuleTestReport,
    RuleTestResult,
    run_rule_tests,
)
from reclaim.rules.testing import find_rule_tests

_STRICT = ConfigDict(extra="forbid", frozen=True)


class PlanTestCase(BaseModel):
    """One plan test."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    plan: dict[str, Any] | None = None
    plan_file: str | None = None
    now: datetime.datetime | datetime.date | None = None
    deny: list[str] | None = None
    warn: list[str] | None = None
    info: list[str] | None = None
    excepted: list[str] | None = None
    verdict: Literal["pass", "fail"] | None = None


class PlanTestFile(BaseModel):
    """A ``*_test.yaml`` file."""

    model_config = _STRICT

    policies: str | list[str] | None = None
    tests: list[PlanTestCase]


def find_plan_tests(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every ``*_test.yaml`` under ``paths`` (files as given, folders searched recursively)."""
    return find_rule_tests(paths, suffixes=PLAN_TEST_SUFFIXES)


def run_policy_tests(
    paths: Sequence[str | os.PathLike[str]], *, prices: PriceTable | None = None
) -> RuleTestReport:
    """Run the fact tests and the plan tests under ``paths``."""
    report = RuleTestReport()
    missing = [path for path in paths if not Path(path).exists()]
    for path in missing:
        report.errors.append(ConfigError(f"no such file or folder: {path}", fix="check the path"))
    present = [path for path in paths if Path(path).exists()]
    policy_files = find_policy_files(present)
    if policy_files:
        report.extend(run_rule_tests(policy_files, actions=POLICY_ACTIONS))
    table = prices or load_prices()
    for test_file in find_plan_tests(present):
        try:
            header, cases = _load_test_file(test_file)
            policies = _policies_for(test_file, header)
        except RuleFileError as exc:
            report.errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            report.errors.append(exc)
            continue
        for case in cases:
            report.results.append(_run_case(test_file, case, policies, table))
    if not report.results and not report.errors:
        report.errors.append(
            ConfigError(
                "no policy tests found under " + ", ".join(str(path) for path in paths),
                fix="add 'tests:' to a policy file, a <name>.tests.yaml or a <name>_test.yaml",
            )
        )
    return report


def _load_test_file(path: Path) -> tuple[PlanTestFile, list[PlanTestCase]]:
    where = SourceLocation(str(path))
    try:
        data = YAML(typ="safe").load(path.read_text("utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(
            f"cannot read the plan test file: {exc}", location=where, fix="fix the YAML"
        ) from exc
    try:
        parsed = PlanTestFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"{at}: {first['msg']}",
            location=where,
            fix="a plan test file has 'tests:' (name, plan or plan_file, deny/warn/info, "
            "verdict) and optionally 'policies:'",
        ) from exc
    return parsed, list(parsed.tests)


def _policies_for(path: Path, header: PlanTestFile) -> list[PolicySet]:
    named = header.policies
    if named is None:
        targets: list[Path] = [path.parent]
    else:
        names = [named] if isinstance(named, str) else named
        targets = [path.parent / name for name in names]
    return load_policies(targets)


def _fragment(plan: Mapping[str, Any]) -> dict[str, Any]:
    document = dict(plan)
    document.setdefault("format_version", "1.2")
    document.setdefault("planned_values", {})
    changes = []
    for item in document.get("resource_changes") or ():
        if not isinstance(item, Mapping):
            changes.append(item)
            continue
        change = dict(item)
        address = str(change.get("address", ""))
        resource_type = str(change.get("type", ""))
        change.setdefault("mode", "data" if address.startswith("data.") else "managed")
        change.setdefault("name", address.rsplit(".", 1)[-1].split("[", 1)[0])
        change.setdefault(
            "provider_name", f"registry.terraform.io/hashicorp/{resource_type.split('_', 1)[0]}"
        )
        changes.append(change)
    document["resource_changes"] = changes
    return document


def _run_case(
    path: Path, case: PlanTestCase, policies: Sequence[PolicySet], prices: PriceTable
) -> RuleTestResult:
    source = str(path)
    try:
        if case.plan_file is not None:
            plan_path = path.parent / case.plan_file
            plan = parse_plan(plan_path.read_bytes(), str(plan_path))
        elif case.plan is not None:
            plan = parse_plan(
                json.dumps(_fragment(case.plan), default=str), f"{source}: {case.name}"
            )
        else:
            return RuleTestResult(source, case.name, error="give 'plan' or 'plan_file'")
        report = check_plan(plan, policies, prices=prices, now=_instant(case.now))
    except (ConfigError, OSError) as exc:
        return RuleTestResult(source, case.name, error=str(exc))
    return RuleTestResult(source, case.name, tuple(_differences(case, report)))


def _instant(value: datetime.datetime | datetime.date | None) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime(value.year, value.month, value.day, 12, tzinfo=datetime.UTC)


def _differences(case: PlanTestCase, report: Report) -> list[str]:
    found: dict[str, list[str]] = {"deny": [], "warn": [], "info": [], "excepted": []}
    for finding in report.findings:
        key = "excepted" if finding.excepted is not None else finding.effect
        if finding.rule_id not in found[key]:
            found[key].append(finding.rule_id)
    differences: list[str] = []
    for key in ("deny", "warn", "info", "excepted"):
        expected = getattr(case, key)
        if expected is not None and sorted(set(expected)) != sorted(found[key]):
            differences.append(
                f"{key}:\n  - expected {sorted(set(expected))}\n  + actual   {sorted(found[key])}"
            )
    if case.verdict is not None:
        actual = "fail" if report.failed else "pass"
        if actual != case.verdict:
            differences.append(f"verdict:\n  - expected {case.verdict!r}\n  + actual   {actual!r}")
    return differences
