"""reclaim.tickets' public names are frozen: changing them is a deliberate act."""

from __future__ import annotations

import reclaim.tickets

TICKETS_API = [
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


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.tickets.__all__) == sorted(TICKETS_API)
    for name in reclaim.tickets.__all__:
        assert hasattr(reclaim.tickets, name)
