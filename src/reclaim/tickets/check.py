"""``reclaim jira check``: find what would fail at ticket 5,000 before the first ticket.

Given the routes the open recommendations would take, ask Jira once per project whether the
project, issue type, components and fields exist, and whether the workflow of that issue type
has a done status (to close) and a to-do status (to reopen). Pure apart from the reads.
"""

from __future__ import annotations

__all__ = ["Problem", "check_routes"]

from collections.abc import Iterable
from dataclasses import dataclass

from reclaim.tickets.errors import JiraRequestError
from reclaim.tickets.jira import JiraClient
from reclaim.tickets.routing import TicketRoute


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}; {self.fix}"


def check_routes(client: JiraClient, routes: Iterable[TicketRoute]) -> list[Problem]:
    problems: list[Problem] = []
    routes = list(routes)
    client.server_info()
    field_ids = {f.id for f in client.fields()}
    needed = {"summary", "description", "labels"}
    if any(r.priority for r in routes):
        needed.add("priority")
    if any(r.components for r in routes):
        needed.add("components")
    if any(r.assignee for r in routes):
        needed.add("assignee")
    for missing in sorted(needed - field_ids):
        problems.append(
            Problem(
                "Jira fields",
                f"field {missing!r} is not available",
                "ask a Jira admin to enable it",
            )
        )
    by_project: dict[str, list[TicketRoute]] = {}
    for route in routes:
        by_project.setdefault(route.project, []).append(route)
    for key, project_routes in sorted(by_project.items()):
        rules = sorted({r.rule_id or "default project" for r in project_routes})
        where = f"project {key} (from {', '.join(rules)})"
        try:
            project = client.project(key)
        except JiraRequestError as exc:
            problems.append(
                Problem(
                    where,
                    f"Jira cannot find it (HTTP {exc.status})",
                    "fix the routing rule's project or create the project",
                )
            )
            continue
        types = {t.name for t in project.issue_types}
        statuses = client.project_statuses(key)
        for issue_type in sorted({r.issue_type for r in project_routes}):
            if issue_type not in types:
                problems.append(
                    Problem(
                        where,
                        f"no issue type {issue_type!r} (it has {', '.join(sorted(types))})",
                        "change issue_type in the routing rule",
                    )
                )
                continue
            categories = {category for _, category in statuses.get(issue_type, ())}
            for category, purpose in (("done", "close tickets"), ("new", "reopen tickets")):
                if category not in categories:
                    problems.append(
                        Problem(
                            where,
                            f"the {issue_type} workflow has no {category!r} status to {purpose}",
                            "use another issue type or workflow",
                        )
                    )
        components = set(project.components)
        for component in sorted({c for r in project_routes for c in r.components} - components):
            problems.append(
                Problem(
                    where,
                    f"no component {component!r}",
                    f"create it in Jira or use one of: {', '.join(sorted(components)) or 'none'}",
                )
            )
    return problems
