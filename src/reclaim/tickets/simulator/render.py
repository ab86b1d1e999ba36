"""The simulated site's JSON, shaped as Jira Cloud's REST API answers (v3 ADF, v2 strings)."""

from __future__ import annotations

__all__ = ["Renderer", "jira_time"]

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reclaim.tickets.document import Document, adf_to_text
from reclaim.tickets.simulator.body import plain
from reclaim.tickets.simulator.state import SimChange, SimComment, SimIssue
from reclaim.tickets.simulator.workflow import CATEGORIES, RESOLUTIONS, Project, Status
from reclaim.tickets.simulator.workflow import WorkflowTransition as WT

ALL_FIELDS = (
    "summary",
    "description",
    "status",
    "resolution",
    "labels",
    "components",
    "assignee",
    "priority",
    "issuetype",
    "project",
    "created",
    "updated",
    "creator",
)
FIELD_NAMES = {
    "summary": "Summary",
    "description": "Description",
    "status": "Status",
    "resolution": "Resolution",
    "labels": "Labels",
    "components": "Components",
    "assignee": "Assignee",
    "priority": "Priority",
    "issuetype": "Issue Type",
    "project": "Project",
    "created": "Created",
    "updated": "Updated",
    "creator": "Creator",
}


def jira_time(ms: int, *, rfc3339: bool = False) -> str:
    """Jira's timestamp format: ``2024-05-01T10:00:00.000+0000``.

    Jira writes issue fields with a ``+0000`` offset; where the OpenAPI document types a value
    as ``date-time`` (comments, changelog, server info) ``rfc3339`` gives ``+00:00`` instead,
    which every Jira client parses as well.
    """
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    zone = "+00:00" if rfc3339 else "+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}{zone}"


class Renderer:
    def __init__(self, base_url: str, version: int) -> None:
        self.base = base_url.rstrip("/")
        self.version = version

    def api(self, tail: str) -> str:
        return f"{self.base}/rest/api/{self.version}/{tail}"

    def user(self, account: str | None) -> dict[str, Any] | None:
        if account is None:
            return None
        return {
            "self": self.api(f"user?accountId={account}"),
            "accountId": account,
            "displayName": account,
            "active": True,
            "accountType": "atlassian",
            "timeZone": "UTC",
            # Data Center clients identify people by name.
            "name": account,
        }

    def rich(self, value: Any) -> Any:
        """A stored description/comment body as this API version shows it."""
        value = plain(value)
        if value is None:
            return None
        if self.version >= 3:
            return value if isinstance(value, dict) else Document.of_text(str(value)).to_adf()
        return value if isinstance(value, str) else adf_to_text(value)

    def status(self, project: Project, status: Status) -> dict[str, Any]:
        cat_id, cat_name, colour = CATEGORIES[status.category]
        return {
            "self": self.api(f"status/{status.id}"),
            "description": "",
            "iconUrl": f"{self.base}/images/icons/status.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": self.api(f"statuscategory/{cat_id}"),
                "id": cat_id,
                "key": status.category,
                "colorName": colour,
                "name": cat_name,
            },
        }

    def project_ref(self, project: Project) -> dict[str, Any]:
        return {
            "self": self.api(f"project/{project.id}"),
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
        }

    def issue_type(self, type_id: str, name: str) -> dict[str, Any]:
        return {
            "self": self.api(f"issuetype/{type_id}"),
            "id": type_id,
            "name": name,
            "description": "",
            "subtask": False,
            "hierarchyLevel": 0,
        }

    def project(self, project: Project) -> dict[str, Any]:
        return {
            **self.project_ref(project),
            "description": "",
            "lead": self.user("admin"),
            "assigneeType": "UNASSIGNED",
            "issueTypes": [self.issue_type(i, n) for i, n in project.issue_types],
            "components": [
                {"self": self.api(f"component/{cid}"), "id": cid, "name": name}
                for cid, name in project.components
            ],
            "versions": [],
            "roles": {},
            "style": "classic",
            "isPrivate": False,
            "properties": {},
        }

    def field_values(self, issue: SimIssue) -> dict[str, Any]:
        project = issue.project
        resolution = None
        if issue.resolution is not None:
            resolution = {
                "self": self.api(f"resolution/{RESOLUTIONS[issue.resolution]}"),
                "id": RESOLUTIONS[issue.resolution],
                "name": issue.resolution,
                "description": "",
            }
        components = {name: cid for cid, name in project.components}
        return {
            "summary": issue.summary,
            "description": self.rich(issue.description),
            "status": self.status(project, project.workflow.status(issue.status)),
            "resolution": resolution,
            "labels": list(issue.labels),
            "components": [
                {
                    "self": self.api(f"component/{components.get(c, c)}"),
                    "id": components.get(c, c),
                    "name": c,
                }
                for c in issue.components
            ],
            "assignee": self.user(issue.assignee),
            "priority": {"id": "3", "name": issue.priority} if issue.priority else None,
            "issuetype": self.issue_type(*issue.issue_type),
            "project": self.project_ref(project),
            "created": jira_time(issue.created_ms),
            "updated": jira_time(issue.updated_ms),
            "creator": self.user(issue.creator),
        }

    def issue(
        self,
        issue: SimIssue,
        fields: Sequence[str] | None = None,
        *,
        properties: Sequence[str] = (),
        expand: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The issue with the asked fields (``None``: all), as GET issue and search return it."""
        wanted = _wanted(fields)
        values = self.field_values(issue)
        body: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": str(issue.id),
            "self": self.api(f"issue/{issue.id}"),
            "key": issue.key,
        }
        if wanted is not None:
            body["fields"] = {k: v for k, v in values.items() if k in wanted}
        if properties:
            body["properties"] = {k: v for k, v in issue.properties.items() if k in properties}
        if "changelog" in expand:
            changes = [self.change(c) for c in issue.changelog]
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(changes),
                "total": len(changes),
                "histories": changes,
            }
        return body

    def change(self, change: SimChange) -> dict[str, Any]:
        return {
            "id": str(change.id),
            "author": self.user(change.author),
            "created": jira_time(change.created_ms, rfc3339=True),
            "items": [
                {
                    "field": name,
                    "fieldtype": "jira",
                    "fieldId": name,
                    "from": before,
                    "fromString": before,
                    "to": after,
                    "toString": after,
                }
                for name, before, after in change.items
            ],
        }

    def comment(self, issue: SimIssue, comment: SimComment) -> dict[str, Any]:
        return {
            "self": self.api(f"issue/{issue.id}/comment/{comment.id}"),
            "id": str(comment.id),
            "author": self.user(comment.author),
            "updateAuthor": self.user(comment.author),
            "body": self.rich(comment.body),
            "created": jira_time(comment.created_ms, rfc3339=True),
            "updated": jira_time(comment.created_ms, rfc3339=True),
            "jsdPublic": True,
        }

    def transition(self, project: Project, transition: WT) -> dict[str, Any]:
        return {
            "id": transition.id,
            "name": transition.name,
            "to": self.status(project, project.workflow.status(transition.to)),
            "hasScreen": False,
            "isGlobal": not transition.sources,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }

    def fields(self) -> list[dict[str, Any]]:
        return [
            {
                "id": key,
                "key": key,
                "name": name,
                "custom": False,
                "orderable": key not in {"status", "created", "updated", "creator", "resolution"},
                "navigable": True,
                "searchable": True,
                "clauseNames": [key],
                "schema": {
                    "type": "string" if key in {"summary", "description"} else "any",
                    "system": key,
                },
            }
            for key, name in FIELD_NAMES.items()
        ]


def _wanted(fields: Sequence[str] | None) -> set[str] | None:
    """Jira's field selection: ``*all``, ``*navigable``, names, and ``-name`` exclusions."""
    if fields is None:
        return set(ALL_FIELDS)
    names = [f.strip() for item in fields for f in str(item).split(",") if f.strip()]
    if not names:
        return None
    chosen: set[str] = set()
    for name in names:
        if name in {"*all", "*navigable"}:
            chosen |= set(ALL_FIELDS)
        elif name.startswith("-"):
            chosen.discard(name[1:])
        elif name != "id":
            chosen.add(name)
    return chosen
