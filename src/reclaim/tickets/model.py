"""The values that cross the ticket-system interface: drafts going out, issues coming back.

They are plain frozen dataclasses so the sync code, the simulator and the tests share one
vocabulary and never pass raw Jira JSON around.
"""

from __future__ import annotations

__all__ = [
    "BulkCreateResult",
    "ChangeItem",
    "ChangelogEntry",
    "Comment",
    "CreatedIssue",
    "FailedDraft",
    "FieldInfo",
    "Issue",
    "IssueDraft",
    "IssueType",
    "ProjectInfo",
    "SearchPage",
    "ServerInfo",
    "Transition",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reclaim.tickets.document import Document


@dataclass(frozen=True)
class IssueDraft:
    """An issue to create. ``properties`` become issue entity properties on creation."""

    project: str
    summary: str
    issue_type: str = "Task"
    description: Document | None = None
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    assignee: str | None = None
    priority: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CreatedIssue:
    id: str
    key: str
    url: str


@dataclass(frozen=True)
class FailedDraft:
    """One row of a bulk create that Jira rejected; ``index`` is its place in the caller's list."""

    index: int
    status: int
    messages: tuple[str, ...]
    field_errors: Mapping[str, str]

    def describe(self) -> str:
        parts = list(self.messages) + [
            f"{name}: {text}" for name, text in self.field_errors.items()
        ]
        return "; ".join(parts) or f"HTTP {self.status}"


@dataclass(frozen=True)
class BulkCreateResult:
    """Created issues aligned with the drafts: ``created[i]`` is draft ``i``, None if it failed."""

    created: tuple[CreatedIssue | None, ...]
    failed: tuple[FailedDraft, ...]


@dataclass(frozen=True)
class Issue:
    """The fields reclaim reads back from an issue."""

    id: str
    key: str
    summary: str
    status: str
    status_category: str
    resolution: str | None
    labels: tuple[str, ...]
    updated_ms: int
    created_ms: int
    project: str


@dataclass(frozen=True)
class SearchPage:
    issues: tuple[Issue, ...]
    next_page_token: str | None


@dataclass(frozen=True)
class Transition:
    id: str
    name: str
    to_status: str
    to_category: str


@dataclass(frozen=True)
class Comment:
    id: str
    body_text: str
    created_ms: int


@dataclass(frozen=True)
class ChangeItem:
    field: str
    from_string: str | None
    to_string: str | None


@dataclass(frozen=True)
class ChangelogEntry:
    id: str
    author: str | None
    created_ms: int
    items: tuple[ChangeItem, ...]


@dataclass(frozen=True)
class ServerInfo:
    base_url: str
    version: str
    deployment_type: str
    server_time_zone: str | None


@dataclass(frozen=True)
class FieldInfo:
    id: str
    name: str
    custom: bool


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    key: str
    name: str
    issue_types: tuple[IssueType, ...]
    components: tuple[str, ...]
