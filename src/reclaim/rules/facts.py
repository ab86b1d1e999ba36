"""Facts as they arrive from files: datetimes written as text, and fields no fact has.

JSON has no datetime type, so a field declared ``datetime`` in the rule file's ``facts:`` comes
as ISO 8601 text; :func:`parse_declared_datetimes` turns it into a datetime before evaluation.
Without a schema every name in a condition is a field, so a typo (``invoice_numbr``) or a word
meant as a value (``yes``) silently never matches; :func:`absent_fields` lists the fields the
rules read that no fact of a batch has, for the command line to warn about.
"""

from __future__ import annotations

__all__ = ["AbsentField", "absent_fields", "parse_declared_datetimes"]

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules.expression import FactSchema, FieldType
from reclaim.rules.expression.runtime import parse_datetime
from reclaim.rules.ruleset import RuleSet


def parse_declared_datetimes(
    schema: FactSchema | None, fact: Mapping[str, Any], *, where: str = "the fact"
) -> dict[str, Any]:
    """``fact`` with ISO 8601 text parsed (to UTC) wherever ``schema`` declares a datetime,
    nested maps included. Raises ConfigError naming the field when the text is not ISO 8601."""
    result = dict(fact)
    if schema is None:
        return result
    for name, spec in schema.items():
        value = result.get(name)
        if spec.type is FieldType.DATETIME and isinstance(value, str):
            try:
                result[name] = parse_datetime(value).astimezone(UTC)
            except ValueError as exc:
                raise ConfigError(
                    f"{where}: field {name!r} is declared datetime, but {exc}",
                    fix="write datetimes as ISO 8601, e.g. 2024-01-31T12:00:00Z",
                ) from None
        elif spec.schema is not None and isinstance(value, Mapping):
            result[name] = parse_declared_datetimes(spec.schema, value, where=where)
    return result


@dataclass(frozen=True)
class AbsentField:
    """A field a rule reads that no fact of the batch has (so it is null for every fact)."""

    rule_id: str
    field: str
    location: SourceLocation | None
    suggestion: str | None

    def __str__(self) -> str:
        place = f"{self.location}: " if self.location else ""
        hint = (
            f"did you mean {self.suggestion!r}?"
            if self.suggestion
            else "check the spelling, or write true/false/null for a value"
        )
        return (
            f"{place}rule {self.rule_id!r} reads field {self.field!r}, which no fact has "
            f"(it is null for every fact); {hint}"
        )


def absent_fields(ruleset: RuleSet, present: Iterable[str]) -> list[AbsentField]:
    """Each (rule, field) where a rule reads a top-level field that is not in ``present``
    (the columns of a table, or every key of a batch of facts). Fields that an action of the
    rule set writes (``set``) are not reported."""
    known = set(present)
    written = {
        name
        for rule in ruleset.rules
        if rule.action is not None and rule.action.updates_context
        for name in rule.params
    }
    found: list[AbsentField] = []
    for rule in ruleset.rules:
        names = set(rule.condition.fields)
        for value in rule.params.values():
            for expression in value.expressions:
                names |= expression.fields
        for name in sorted(names - known - written):
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            found.append(AbsentField(rule.id, name, rule.location, close[0] if close else None))
    return found
