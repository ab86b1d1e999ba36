"""Policy files: rule files of the rules engine whose rules end in a ``finding``.

A policy file is an ordinary rule file (``kind: policy``) loaded by :func:`reclaim.rules.load_rules`
with one more action, ``finding``: its ``effect`` (``deny``, ``warn`` or ``info``), a ``message``
and a ``remediation`` (templates over the fact), and ``exceptions`` (by address pattern or by an
approval tag, each with an expiry date). Rules using the engine's own ``verdict`` action work
too: ``deny`` and ``warn`` become findings, ``allow`` does not.

Files ending in ``_test.yaml`` are plan tests (:mod:`reclaim.policy.testing`) and ``.tests.yaml``
the engine's fact tests; neither is a policy.
"""

from __future__ import annotations

__all__ = [
    "POLICY_ACTIONS",
    "PolicyException",
    "PolicySet",
    "builtin_pack_path",
    "find_policy_files",
    "load_policies",
]

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from reclaim.errors import ConfigError
from reclaim.rules import (
    ACTIONS,
    ActionRegistry,
    ActionSpec,
    RuleFileError,
    RuleSet,
    find_rule_files,
    load_rules,
)

PLAN_TEST_SUFFIXES = ("_test.yaml", "_test.yml")

_FINDING_EXAMPLE = """\
kind: policy
rules:
  - id: no-gp2
    when: "'gp2' in volume_types"
    action: finding
    params:
      effect: deny
      message: "{address} uses gp2 volumes"
      remediation: "Use gp3: 20% cheaper per GB, with 3,000 IOPS included"
      exceptions:
        - address: "module.legacy.*"
          expires: 2027-06-30
          reason: the legacy stack is retired in June
tests:
  - name: a gp2 volume is denied
    fact: {address: aws_ebs_volume.data, volume_types: [gp2]}
    fired: [no-gp2]
    actions:
      no-gp2: {effect: deny, message: aws_ebs_volume.data uses gp2 volumes}
"""


def _finding(context: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return dict(params)


_EXCEPTION_SCHEMA = {
    "type": "object",
    "properties": {
        "address": {"type": "string", "minLength": 1},
        "tag": {"type": "string", "minLength": 1},
        "expires": {"type": "string"},
        "reason": {"type": "string"},
    },
    "additionalProperties": False,
}

#: The rules engine's actions plus ``finding``: give it to ``load_rules(actions=…)``.
POLICY_ACTIONS: ActionRegistry = ACTIONS.copy()
POLICY_ACTIONS.add(
    ActionSpec(
        name="finding",
        handler=_finding,
        schema={
            "type": "object",
            "required": ["effect", "message"],
            "properties": {
                "effect": {
                    "enum": ["deny", "warn", "info"],
                    "description": "deny fails the check; warn and info are reported only.",
                },
                "message": {
                    "type": "string",
                    "x-kind": "template",
                    "description": "What is wrong; {expressions} are filled in.",
                },
                "remediation": {
                    "type": "string",
                    "x-kind": "template",
                    "description": "How to fix it; {expressions} are filled in.",
                },
                "exceptions": {
                    "type": "array",
                    "items": _EXCEPTION_SCHEMA,
                    "description": "Resources this rule does not apply to, until a date.",
                },
            },
            "additionalProperties": False,
        },
        doc=(
            "Report a policy finding: deny, warn or info, with a message, a remediation hint "
            "and exceptions by address pattern or approval tag, each with an expiry date."
        ),
        example=_FINDING_EXAMPLE,
        pure=True,
        # Like the engine's own actions, the handler only returns its parameters, so the engine
        # may record them without calling it (its fast path for built-in actions).
        builtin=True,
    )
)


@dataclass(frozen=True)
class PolicyException:
    """One exception of a rule: by ``address`` pattern (``*`` and ``?`` wildcards) or by an
    approval ``tag``; ``expires`` is the last day it holds. A tag exception without
    ``expires`` takes the date from the tag's value (``finops-approved = "2027-03-31"``)."""

    address: str | None
    tag: str | None
    expires: datetime.date | None
    reason: str = ""


@dataclass(frozen=True)
class PolicySet:
    """A loaded policy file: its rule set and each rule's exceptions."""

    ruleset: RuleSet
    exceptions: Mapping[str, tuple[PolicyException, ...]]

    @property
    def name(self) -> str:
        return self.ruleset.name


def builtin_pack_path() -> Path:
    """The folder of the built-in policy pack shipped with reclaim."""
    return Path(str(resources.files("reclaim.policy").joinpath("pack")))


def find_policy_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Policy files under ``paths``: rule files, without plan tests (``*_test.yaml``)."""
    return [path for path in find_rule_files(paths) if not path.name.endswith(PLAN_TEST_SUFFIXES)]


def load_policies(paths: Sequence[str | os.PathLike[str]]) -> list[PolicySet]:
    """Load every policy file under ``paths``. Raises :class:`RuleFileError` with every error
    of every file; a path that does not exist or holds no policy is an error too."""
    errors: list[ConfigError] = []
    for path in paths:
        if not Path(path).exists():
            errors.append(
                ConfigError(f"no such file or folder: {path}", fix="check the --rules path")
            )
    files = find_policy_files(path for path in paths if Path(path).exists())
    if not files and not errors:
        errors.append(
            ConfigError(
                "no policy files (*.yaml) found under " + ", ".join(str(p) for p in paths),
                fix="point --rules at a folder of policy files, or leave it out for the "
                "built-in pack",
            )
        )
    policies: list[PolicySet] = []
    for file in files:
        try:
            ruleset = load_rules(file, actions=POLICY_ACTIONS)
        except RuleFileError as exc:
            errors.extend(exc.errors)
            continue
        try:
            policies.append(PolicySet(ruleset, _exceptions_of(ruleset)))
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise RuleFileError(errors)
    return policies


def _exceptions_of(ruleset: RuleSet) -> dict[str, tuple[PolicyException, ...]]:
    found: dict[str, tuple[PolicyException, ...]] = {}
    for rule in ruleset.rules:
        value = rule.params.get("exceptions")
        if value is None or rule.action is None or rule.action.name != "finding":
            continue
        items: list[PolicyException] = []
        for index, entry in enumerate(value.value if value.kind == "const" else ()):
            where = f"rule {rule.id!r}, exception {index + 1}"
            address, tag = entry.get("address"), entry.get("tag")
            if (address is None) == (tag is None):
                raise ConfigError(
                    f"{where}: give either 'address' or 'tag'",
                    location=rule.location,
                    fix="write one exception per address pattern or approval tag",
                )
            expires = _date(entry.get("expires"), where, rule.location)
            if expires is None and address is not None:
                raise ConfigError(
                    f"{where}: an address exception needs 'expires'",
                    location=rule.location,
                    fix="add 'expires: YYYY-MM-DD', the last day the exception holds",
                )
            items.append(PolicyException(address, tag, expires, str(entry.get("reason") or "")))
        found[rule.id] = tuple(items)
    return found


def _date(value: Any, where: str, location: Any) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(
            f"{where}: 'expires' is {value!r}, not a date",
            location=location,
            fix="write it as YYYY-MM-DD",
        ) from exc
