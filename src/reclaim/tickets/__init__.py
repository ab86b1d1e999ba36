"""Ticket systems: the Jira client (Cloud and Data Center behind one API) and its simulator.

Build a client with :func:`connect` from :func:`credentials_from_env`; tests inject an
``httpx`` transport. Failures are :class:`JiraError` subclasses whose message ends with the fix.
"""

from __future__ import annotations

from reclaim.tickets.client import connect
from reclaim.tickets.credentials import Flavor, JiraCredentials, credentials_from_env
from reclaim.tickets.document import Block, Document, Inline
from reclaim.tickets.errors import (
    CreateOutcomeUnknown,
    JiraError,
    JiraRequestError,
    JiraUnavailableError,
)
from reclaim.tickets.jira import BULK_LIMIT, SEARCH_FIELDS, JiraClient, issue_from_json
from reclaim.tickets.model import (
    BulkCreateResult,
    ChangeItem,
    ChangelogEntry,
    Comment,
    CreatedIssue,
    FailedDraft,
    FieldInfo,
    Issue,
    IssueDraft,
    IssueType,
    ProjectInfo,
    SearchPage,
    ServerInfo,
    Transition,
)
from reclaim.tickets.pacer import Pacer
from reclaim.tickets.retry import RetryPolicy
from reclaim.tickets.session import JiraSession, SessionStats, open_http_client

__all__ = [
    "BULK_LIMIT",
    "SEARCH_FIELDS",
    "Block",
    "BulkCreateResult",
    "ChangeItem",
    "ChangelogEntry",
    "Comment",
    "CreateOutcomeUnknown",
    "CreatedIssue",
    "Document",
    "FailedDraft",
    "FieldInfo",
    "Flavor",
    "Inline",
    "Issue",
    "IssueDraft",
    "IssueType",
    "JiraClient",
    "JiraCredentials",
    "JiraError",
    "JiraRequestError",
    "JiraSession",
    "JiraUnavailableError",
    "Pacer",
    "ProjectInfo",
    "RetryPolicy",
    "SearchPage",
    "ServerInfo",
    "SessionStats",
    "Transition",
    "connect",
    "credentials_from_env",
    "issue_from_json",
    "open_http_client",
]
