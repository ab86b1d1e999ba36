"""Why did this rule fire, and why did that one not?

:func:`explain` evaluates one fact against every rule of a rule set, fired or not, and keeps each
condition's tree of sub-expressions with their actual and expected values. It is a separate
path from evaluation: :meth:`RuleSet.evaluate` never builds these trees, so explaining costs
nothing when nobody asks. Host (impure) actions are not called.
"""

from __future__ import annotations

__all__ = ["Explanation", "RuleExplanation", "explain"]

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reclaim.errors import ConfigError, ExecutionError, SourceLocation
from reclaim.rules.expression import ExplainNode
from reclaim.rules.expression.display import plain_value, show_value
from reclaim.rules.ruleset import RuleSet, format_value

Status = Literal["fired", "not matched", "shadowed", "disabled"]

_STATUS_TEXT = {
    "fired": "fired",
    "not matched": "did not match",
    "shadowed": "matched, but an earlier rule fired first (mode first)",
    "disabled": "disabled (enabled: false)",
}


@dataclass(frozen=True)
class RuleExplanation:
    """One rule's part of an explanation.

    ``status``: ``fired``; ``not matched``; ``shadowed`` (matched, but in mode ``first`` an
    earlier rule fired); ``disabled``. ``tree`` is the condition's explain tree (None when
    disabled); ``params`` the evaluated parameters when the condition matched.
    """

    rule_id: str
    status: Status
    condition: str
    tree: ExplainNode | None
    params: Mapping[str, Any] | None = None
    description: str = ""
    location: SourceLocation | None = None

    @property
    def fired(self) -> bool:
        return self.status == "fired"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the rule, its status, parameters and condition tree."""
        return {
            "rule_id": self.rule_id,
            "status": self.status,
            "fired": self.fired,
            "condition": self.condition,
            "location": str(self.location) if self.location else None,
            "params": plain_value(self.params) if self.params is not None else None,
            "tree": _node_dict(self.tree) if self.tree is not None else None,
        }

    def render(self) -> str:
        """A plain-text block: the rule, its status, the condition tree and the params."""
        mark = "✓" if self.fired else "✗"
        where = f"  ({self.location})" if self.location else ""
        lines = [f"{mark} {self.rule_id}: {_STATUS_TEXT[self.status]}{where}"]
        if self.tree is not None:
            lines.extend("    " + line for line in self.tree.render().splitlines())
        if self.params:
            for name, value in self.params.items():
                if isinstance(value, str | float | datetime.datetime):
                    shown = format_value(value)
                else:  # bounded: a parameter can carry a huge integer or a deep value
                    shown = show_value(value)
                lines.append(f"    {name} = {shown}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Explanation:
    """Every rule of a rule set explained for one fact, in evaluation order."""

    ruleset: str
    mode: str
    fact: Mapping[str, Any]
    rules: tuple[RuleExplanation, ...]
    context: Mapping[str, Any]

    @property
    def fired(self) -> list[str]:
        return [rule.rule_id for rule in self.rules if rule.fired]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "ruleset": self.ruleset,
            "mode": self.mode,
            "fired": self.fired,
            "context": plain_value(self.context),
            "rules": [rule.to_dict() for rule in self.rules],
        }

    def render(self) -> str:
        header = f"rule set {self.ruleset} (mode {self.mode}): {len(self.fired)} fired"
        return "\n".join([header, *(rule.render() for rule in self.rules)])


def _node_dict(node: ExplainNode) -> dict[str, Any]:
    data: dict[str, Any] = {"text": node.text, "value": plain_value(node.value)}
    if node.op is not None:
        data.update(
            op=node.op, actual=plain_value(node.actual), expected=plain_value(node.expected)
        )
    if node.children:
        data["children"] = [_node_dict(child) for child in node.children]
    return data


def explain(
    ruleset: RuleSet,
    fact: Mapping[str, Any],
    *,
    now: datetime.datetime | None = None,
    rule_ids: Sequence[str] | None = None,
) -> Explanation:
    """Explain ``fact`` against ``ruleset``; ``rule_ids`` limits the output to those rules.

    Raises ConfigError if ``rule_ids`` names a rule that does not exist.
    """
    known = {rule.id for rule in ruleset.rules}
    for rule_id in rule_ids or ():
        if rule_id not in known:
            raise ConfigError(
                f"rule set {ruleset.name!r} has no rule {rule_id!r}",
                fix="use one of: " + ", ".join(sorted(known)),
            )
    wanted = None if rule_ids is None else set(rule_ids)
    order = list(ruleset.active_rules) + [rule for rule in ruleset.rules if not rule.enabled]
    context: dict[str, Any] = dict(fact)
    fired_first = False
    explained: list[RuleExplanation] = []
    for rule in order:
        shown = wanted is None or rule.id in wanted
        spec = rule.action
        # Rules left out still decide what later rules see: whether one fired first (mode
        # first) and what it set (mode ordered); only their trees are not built.
        sets_context = (
            ruleset.mode == "ordered" and spec is not None and spec.updates_context and spec.pure
        )
        decides_later = sets_context or (ruleset.mode == "first" and not fired_first)
        if not shown and (not rule.enabled or not decides_later):
            continue
        if not rule.enabled:
            item = RuleExplanation(
                rule.id,
                "disabled",
                rule.condition.source,
                None,
                description=rule.description,
                location=rule.location,
            )
        else:
            try:
                tree = rule.condition.explain(context, now=now) if shown else None
                matched = rule.condition.matches(context, now=now)
                params = (
                    rule.evaluate_params(context, now)
                    if matched and (shown or sets_context)
                    else None
                )
            except ExecutionError as exc:
                raise ExecutionError(
                    f"rule {rule.id!r}: {exc.message}", location=rule.location, fix=exc.fix
                ) from exc
            status: Status = "not matched"
            if matched:
                status = "shadowed" if ruleset.mode == "first" and fired_first else "fired"
            if status == "fired":
                fired_first = True
                # Only ordered mode shows later rules what earlier ones set.
                if sets_context and spec is not None and params:
                    update = spec.handler(dict(context), params)
                    if isinstance(update, Mapping):
                        context.update(update)
            item = RuleExplanation(
                rule.id,
                status,
                rule.condition.source,
                tree,
                params,
                description=rule.description,
                location=rule.location,
            )
        if shown:
            explained.append(item)
    return Explanation(ruleset.name, ruleset.mode, fact, tuple(explained), context)
