"""The rule file format, as pydantic models: the "schema" stage of checking a rule file.

These models describe what the YAML may contain; they hold text, not compiled expressions.
They word the errors of a mapping that :mod:`reclaim.rules.spec` does not take as plainly
valid, and give ``reclaim rules schema --json``; the checker compiles the plain values of
:mod:`reclaim.rules.spec` into a :class:`~reclaim.rules.ruleset.RuleSet`. A field added here
must be added there too (a test compares them).

The user's first format is accepted unchanged: ``name`` is another spelling of ``id`` and
``condition`` of ``when``.
"""

from __future__ import annotations

__all__ = [
    "Kind",
    "Mode",
    "RuleModel",
    "RuleSetModel",
    "RuleTestCaseModel",
    "RuleTestFileModel",
    "known_keys",
]

import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from reclaim.rules.spec import Kind, Mode

_STRICT = ConfigDict(extra="forbid", populate_by_name=True, strict=True, frozen=True)


class RuleModel(BaseModel):
    """One rule as written in the file."""

    model_config = _STRICT

    id: str = Field(
        min_length=1,
        validation_alias=AliasChoices("id", "name"),
        description="Unique name of the rule in its rule set (``name`` is accepted too).",
    )
    description: str = Field("", description="What the rule finds and why.")
    when: str | bool = Field(
        validation_alias=AliasChoices("when", "condition"),
        description="The condition, an expression over the fact (``condition`` is accepted "
        "too). ``true`` always matches.",
    )
    action: str | None = Field(
        None, description="Name of a registered action; none records the match only."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the action, checked by its schema."
    )
    priority: int = Field(
        0, description="Higher first in modes all and first; ties keep file order."
    )
    tags: list[str] = Field(default_factory=list, description="Free labels, for people.")
    enabled: bool = Field(True, description="A disabled rule is checked but never evaluated.")


class RuleTestCaseModel(BaseModel):
    """One rule test: a fact in, the rules expected to fire and the actions expected out."""

    model_config = _STRICT

    name: str = Field(min_length=1, description="What the test shows.")
    fact: dict[str, Any] = Field(description="The fact given to the rule set.")
    fired: list[str] | None = Field(
        None, description="Exactly the rule ids expected to fire, in order of evaluation."
    )
    not_fired: list[str] = Field(default_factory=list, description="Rule ids that must not fire.")
    actions: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per rule id, expected action results; only the keys given are compared.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Expected fields of the context after every action ran (a subset).",
    )
    verdict: Literal["allow", "warn", "deny"] | None = Field(
        None, description="Expected strictest verdict (policy rule sets)."
    )
    now: datetime.datetime | None = Field(
        None, description="The time the rules see as now (default: the real time)."
    )


class RuleSetModel(BaseModel):
    """A rule file."""

    model_config = _STRICT

    version: Literal[1] = Field(1, description="Version of the rule file format.")
    kind: Kind = Field("plain", description="What the rules are for.")
    name: str | None = Field(None, description="Name of the rule set; default: the file name.")
    description: str = Field("", description="What the rule set is for.")
    mode: Mode = Field(
        "all",
        description="all: every match; first: the first match by priority then file order; "
        "ordered: every rule in file order, each seeing what earlier actions set.",
    )
    facts: dict[str, Any] | None = Field(
        None,
        description="Declared fields of the facts and their types; when given, conditions "
        "may read only these.",
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Named constants and lists the conditions may use."
    )
    rules: list[RuleModel] = Field(description="The rules.")
    tests: list[RuleTestCaseModel] = Field(
        default_factory=list, description="Rule tests kept beside the rules."
    )


class RuleTestFileModel(BaseModel):
    """A ``*.tests.yaml`` file: tests for the rule file beside it."""

    model_config = _STRICT

    rules: str | None = Field(
        None,
        description="Path of the rule file, relative to this file; default: the same name "
        "without ``.tests``.",
    )
    tests: list[RuleTestCaseModel] = Field(description="The tests.")


def known_keys(model: type[BaseModel]) -> list[str]:
    """Every key a model accepts, aliases included, for "did you mean …?"."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        keys.append(name)
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            keys.extend(choice for choice in alias.choices if isinstance(choice, str))
    return sorted(set(keys))
