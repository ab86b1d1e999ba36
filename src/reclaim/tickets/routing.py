"""Which Jira project, issue type, components, assignee and priority each ticket gets.

Routing rules are an ordinary rule file (``kind: routing``, checked like any other) whose rules
use the ``ticket`` action. The first matching rule wins (``mode: first``); an item nobody's
rule claims goes to the default project. Priority follows the monthly savings through
``priority_by_savings``: the highest band the savings reach.
"""

from __future__ import annotations

__all__ = ["ROUTING_ACTIONS", "Router", "TicketRoute", "load_routing", "load_routing_text"]

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclaim.errors import ConfigError
from reclaim.rules import ACTIONS, RuleSet, load_rules, load_rules_text

_TEMPLATE = {"type": "string", "x-kind": "template"}
_TEMPLATES = {"type": "array", "items": _TEMPLATE, "x-kind": "template"}

TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["project"],
    "properties": {
        "project": {**_TEMPLATE, "description": "Jira project key."},
        "issue_type": {**_TEMPLATE, "description": "Issue type name (default Task)."},
        "components": {**_TEMPLATES, "description": "Component names."},
        "assignee": {**_TEMPLATE, "description": "Account id (Cloud) or user name (DC)."},
        "labels": {**_TEMPLATES, "description": "Extra labels."},
        "team": {**_TEMPLATE, "description": "The owning team, for reports."},
        "priority_by_savings": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "x-kind": "literal",
            "description": "Priority name → lowest monthly savings that earns it.",
        },
    },
    "additionalProperties": False,
}


def _ticket(context: Mapping[str, Any], **params: Any) -> dict[str, Any]:
    """Open the ticket in this Jira project, with this type, components, assignee and priority.

    ```yaml
    kind: routing
    mode: first
    rules:
      - id: team-tag
        when: tags['team'] is not None
        action: ticket
        params:
          project: "{upper(tags['team'])}"
          components: [compute]
          priority_by_savings: {High: 500, Medium: 100, Low: 0}
    tests:
      - name: the team tag names the project
        fact: {tags: {team: ops}}
        fired: [team-tag]
    ```
    """
    return dict(params)


ROUTING_ACTIONS = ACTIONS.copy()
ROUTING_ACTIONS.register("ticket", _ticket, schema=TICKET_SCHEMA, pure=True)


@dataclass(frozen=True)
class TicketRoute:
    project: str
    issue_type: str = "Task"
    components: tuple[str, ...] = ()
    assignee: str | None = None
    priority: str | None = None
    labels: tuple[str, ...] = ()
    team: str | None = None
    rule_id: str | None = None


def _priority(bands: Mapping[str, float] | None, savings: float) -> str | None:
    if not bands:
        return None
    reached = [(floor, name) for name, floor in bands.items() if savings >= floor]
    return max(reached)[1] if reached else None


class Router:
    """Routes one item's facts to a :class:`TicketRoute`."""

    def __init__(
        self,
        rules: RuleSet | None,
        *,
        default_project: str | None = None,
        default_issue_type: str = "Task",
        savings_field: str = "monthly_savings",
    ) -> None:
        self.rules = rules
        self.default_project = default_project
        self.default_issue_type = default_issue_type
        self.savings_field = savings_field

    def route(self, facts: Mapping[str, Any]) -> TicketRoute:
        matches = [] if self.rules is None else list(self.rules.evaluate(facts).matches)
        chosen = next((m for m in matches if m.action == "ticket"), None)
        if chosen is None or not chosen.params.get("project"):
            if not self.default_project:
                raise ConfigError(
                    f"no routing rule matched {facts.get('resource_id', 'an item')!r} "
                    "and there is no default project",
                    fix="add a catch-all rule (when: true, priority: -100) "
                    "or set a default project",
                )
            return TicketRoute(self.default_project, self.default_issue_type, rule_id=None)
        params = chosen.params
        savings = float(facts.get(self.savings_field) or 0)
        return TicketRoute(
            project=str(params["project"]),
            issue_type=str(params.get("issue_type") or self.default_issue_type),
            components=tuple(str(c) for c in params.get("components") or () if c),
            assignee=str(params["assignee"]) if params.get("assignee") else None,
            priority=_priority(params.get("priority_by_savings"), savings),
            labels=tuple(str(label) for label in params.get("labels") or () if label),
            team=str(params["team"]) if params.get("team") else None,
            rule_id=chosen.rule_id,
        )


def load_routing(
    path: str | os.PathLike[str] | None, *, default_project: str | None = None
) -> Router:
    """A router from a routing rule file (all errors found now, with file:line and the fix)."""
    rules = None if path is None else load_rules(Path(path), actions=ROUTING_ACTIONS)
    if rules is None and not default_project:
        raise ConfigError(
            "no routing rules and no default project",
            fix="pass --routing FILE or --default-project KEY",
        )
    return Router(rules, default_project=default_project)


def load_routing_text(
    text: str, *, name: str = "<routing>", default_project: str | None = None
) -> Router:
    rules = load_rules_text(text, name, actions=ROUTING_ACTIONS)
    return Router(rules, default_project=default_project)
