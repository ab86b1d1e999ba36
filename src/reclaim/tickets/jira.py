"""The Jira client: Cloud (REST v3, ADF) and Data Center (REST v2, wiki markup) behind one API.

It speaks only through a :class:`~reclaim.tickets.session.JiraSession`, which owns pacing,
retries and error translation; this module maps reclaim's values to Jira's JSON and back.
"""

from __future__ import annotations

__all__ = ["BULK_LIMIT", "SEARCH_FIELDS", "JiraClient", "issue_from_json", "parse_time_ms"]

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from reclaim.errors import ExecutionError
from reclaim.tickets.credentials import Flavor
from reclaim.tickets.document import Document, adf_to_text
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
from reclaim.tickets.session import JiraSession, request_error

# Jira Cloud refuses more than 50 issues in one bulk create.
BULK_LIMIT = 50
# Search returns only what is asked for; asking for everything makes pages slow and large.
SEARCH_FIELDS = ("summary", "status", "resolution", "labels", "updated", "created", "project")


def parse_time_ms(value: Any) -> int:
    """Jira's ``2024-05-01T10:00:00.000+0000`` as epoch milliseconds (0 when absent)."""
    if not value:
        return 0
    text = str(value)
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return int(datetime.strptime(text, pattern).timestamp() * 1000)
        except ValueError:
            continue
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def issue_from_json(raw: Mapping[str, Any]) -> Issue:
    """An issue as search, GET issue and webhooks send it (v2 or v3), as reclaim reads it."""
    fields = raw.get("fields") or {}
    status = fields.get("status") or {}
    resolution = fields.get("resolution")
    return Issue(
        id=str(raw["id"]),
        key=str(raw["key"]),
        summary=str(fields.get("summary") or ""),
        status=str(status.get("name", "")),
        status_category=str((status.get("statusCategory") or {}).get("key", "")),
        resolution=str(resolution["name"]) if resolution else None,
        labels=tuple(fields.get("labels") or ()),
        updated_ms=parse_time_ms(fields.get("updated")),
        created_ms=parse_time_ms(fields.get("created")),
        project=str((fields.get("project") or {}).get("key", "")),
    )


class JiraClient:
    """Synchronous Jira client; one instance per Jira site."""

    def __init__(self, session: JiraSession, flavor: Flavor = Flavor.CLOUD) -> None:
        self.session = session
        self.flavor = flavor

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/rest/api/{self.flavor.api_version}/{tail}"

    def _get(self, tail: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.session.request("GET", self._path(tail), params=params).json()

    def _rich(self, document: Document, *, encoded: bool = False) -> Any:
        if self.flavor is not Flavor.CLOUD:
            return document.to_wiki()
        # A request body is encoded by JiraSession with msgspec, which writes Raw as it is:
        # the ADF goes in as JSON text, not as dicts built per ticket and then walked again.
        return msgspec.Raw(document.adf_json()) if encoded else document.to_adf()

    def draft_fields(self, draft: IssueDraft, *, encoded: bool = False) -> dict[str, Any]:
        """The ``fields`` object of a create request for ``draft`` (``encoded``: its ADF
        description as ``msgspec.Raw`` JSON text, for a body encoded by ``JiraSession``)."""
        fields: dict[str, Any] = {
            "project": {"key": draft.project},
            "summary": draft.summary,
            "issuetype": {"name": draft.issue_type},
        }
        if draft.description is not None:
            fields["description"] = self._rich(draft.description, encoded=encoded)
        if draft.labels:
            fields["labels"] = list(draft.labels)
        if draft.components:
            fields["components"] = [{"name": name} for name in draft.components]
        if draft.assignee:
            # Cloud identifies people by account id only (GDPR); Data Center by user name.
            user_key = "accountId" if self.flavor is Flavor.CLOUD else "name"
            fields["assignee"] = {user_key: draft.assignee}
        if draft.priority:
            fields["priority"] = {"name": draft.priority}
        return fields

    def _create_body(self, draft: IssueDraft) -> dict[str, Any]:
        body: dict[str, Any] = {"fields": self.draft_fields(draft, encoded=True)}
        if draft.properties:
            body["properties"] = [{"key": k, "value": v} for k, v in draft.properties.items()]
        return body

    def _created(self, raw: Mapping[str, Any]) -> CreatedIssue:
        return CreatedIssue(str(raw["id"]), str(raw["key"]), str(raw.get("self", "")))

    # -- site ----------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        raw = self._get("serverInfo")
        return ServerInfo(
            base_url=str(raw.get("baseUrl", "")),
            version=str(raw.get("version", "")),
            deployment_type=str(raw.get("deploymentType", "")),
            server_time_zone=raw.get("serverTimeZone"),
        )

    def fields(self) -> list[FieldInfo]:
        return [
            FieldInfo(str(f["id"]), str(f.get("name", f["id"])), bool(f.get("custom", False)))
            for f in self._get("field")
        ]

    def project(self, key: str) -> ProjectInfo:
        raw = self._get(f"project/{key}")
        return ProjectInfo(
            id=str(raw["id"]),
            key=str(raw["key"]),
            name=str(raw.get("name", "")),
            issue_types=tuple(
                IssueType(str(t["id"]), str(t["name"])) for t in raw.get("issueTypes") or ()
            ),
            components=tuple(str(c["name"]) for c in raw.get("components") or ()),
        )

    def project_statuses(self, key: str) -> dict[str, list[tuple[str, str]]]:
        """Per issue type of the project: its workflow's (status name, category key) pairs."""
        raw = self._get(f"project/{key}/statuses")
        return {
            str(item["name"]): [
                (str(s["name"]), str((s.get("statusCategory") or {}).get("key", "")))
                for s in item.get("statuses") or ()
            ]
            for item in raw
        }

    # -- create --------------------------------------------------------------------------

    def create_issue(self, draft: IssueDraft) -> CreatedIssue:
        """Create one issue. Raises ``CreateOutcomeUnknown`` rather than risk a duplicate."""
        response = self.session.request(
            "POST", self._path("issue"), json=self._create_body(draft), repeatable=False
        )
        return self._created(response.json())

    def create_issues(self, drafts: Sequence[IssueDraft]) -> BulkCreateResult:
        """Create many issues, ``BULK_LIMIT`` per request, failures mapped back to their drafts.

        Jira numbers failures by position in one request (``failedElementNumber``) and lists
        created issues in request order without the failed ones, so both are re-aligned here.
        """
        created: list[CreatedIssue | None] = []
        failed: list[FailedDraft] = []
        for start in range(0, len(drafts), BULK_LIMIT):
            chunk = drafts[start : start + BULK_LIMIT]
            response = self.session.request(
                "POST",
                self._path("issue/bulk"),
                json={"issueUpdates": [self._create_body(d) for d in chunk]},
                repeatable=False,
                accept=(400,),
            )
            body = response.json()
            if response.status_code == 400 and not isinstance(body.get("errors"), list):
                raise request_error("POST", self._path("issue/bulk"), response)
            chunk_failed = {}
            for error in body.get("errors") or ():
                number = int(error.get("failedElementNumber", -1))
                element = error.get("elementErrors") or {}
                chunk_failed[number] = FailedDraft(
                    index=start + number,
                    status=int(error.get("status", 400)),
                    messages=tuple(str(m) for m in element.get("errorMessages") or ()),
                    field_errors={str(k): str(v) for k, v in (element.get("errors") or {}).items()},
                )
            issues = iter(body.get("issues") or ())
            for offset in range(len(chunk)):
                if offset in chunk_failed:
                    created.append(None)
                    failed.append(chunk_failed[offset])
                else:
                    raw = next(issues, None)
                    if raw is None:
                        raise ExecutionError(
                            f"Jira's bulk create answer has fewer issues than requests "
                            f"(request row {start + offset})",
                            fix="search for the fingerprint labels before creating again",
                        )
                    created.append(self._created(raw))
        return BulkCreateResult(tuple(created), tuple(failed))

    # -- read ----------------------------------------------------------------------------

    def _issue(self, raw: Mapping[str, Any]) -> Issue:
        return issue_from_json(raw)

    def get_issue(self, key: str) -> Issue:
        return self._issue(self._get(f"issue/{key}", {"fields": ",".join(SEARCH_FIELDS)}))

    def search(
        self,
        jql: str,
        *,
        next_page_token: str | None = None,
        max_results: int = 100,
        reconcile_issues: Sequence[int] = (),
        fields: Sequence[str] = SEARCH_FIELDS,
    ) -> SearchPage:
        """One page of a JQL search; ``reconcile_issues`` makes Cloud include just-written ones."""
        if self.flavor is Flavor.CLOUD:
            body: dict[str, Any] = {"jql": jql, "maxResults": max_results, "fields": list(fields)}
            if next_page_token:
                body["nextPageToken"] = next_page_token
            if reconcile_issues:
                body["reconcileIssues"] = [int(i) for i in reconcile_issues]
            raw = self.session.request("POST", self._path("search/jql"), json=body).json()
            token = raw.get("nextPageToken")
            return SearchPage(tuple(self._issue(i) for i in raw.get("issues") or ()), token)
        # Data Center has no search/jql: it pages with startAt and reports a total.
        start = int(next_page_token or 0)
        body = {"jql": jql, "startAt": start, "maxResults": max_results, "fields": list(fields)}
        raw = self.session.request("POST", self._path("search"), json=body).json()
        issues = tuple(self._issue(i) for i in raw.get("issues") or ())
        end = start + len(issues)
        more = issues and end < int(raw.get("total", 0))
        return SearchPage(issues, str(end) if more else None)

    def search_all(
        self, jql: str, *, page_size: int = 100, reconcile_issues: Sequence[int] = ()
    ) -> Iterator[Issue]:
        token: str | None = None
        while True:
            page = self.search(
                jql,
                next_page_token=token,
                max_results=page_size,
                reconcile_issues=reconcile_issues,
            )
            yield from page.issues
            if not page.next_page_token:
                return
            token = page.next_page_token

    # -- change --------------------------------------------------------------------------

    def transitions(self, key: str) -> list[Transition]:
        raw = self._get(f"issue/{key}/transitions")
        result = []
        for t in raw.get("transitions") or ():
            to = t.get("to") or {}
            result.append(
                Transition(
                    id=str(t["id"]),
                    name=str(t.get("name", "")),
                    to_status=str(to.get("name", "")),
                    to_category=str((to.get("statusCategory") or {}).get("key", "")),
                )
            )
        return result

    def transition(
        self,
        key: str,
        transition_id: str,
        *,
        resolution: str | None = None,
        comment: Document | None = None,
        repeatable: bool = True,
    ) -> None:
        """Take a transition. ``repeatable=False``: a lost answer raises ``CreateOutcomeUnknown``
        instead of sending it again (a second send could add its comment twice)."""
        body: dict[str, Any] = {"transition": {"id": transition_id}}
        if resolution:
            body["fields"] = {"resolution": {"name": resolution}}
        if comment is not None:
            body["update"] = {"comment": [{"add": {"body": self._rich(comment)}}]}
        self.session.request(
            "POST", self._path(f"issue/{key}/transitions"), json=body, repeatable=repeatable
        )

    def move_to(
        self,
        key: str,
        *,
        status: str | None = None,
        category: str | None = None,
        resolution: str | None = None,
        comment: Document | None = None,
    ) -> Transition:
        """Take the transition (discovered for this issue now) to a status name or category.

        Workflows differ per project and per issue type, so transition ids are never cached.
        """
        available = self.transitions(key)
        for candidate in available:
            if (status and candidate.to_status.lower() == status.lower()) or (
                not status and category and candidate.to_category == category
            ):
                self.transition(key, candidate.id, resolution=resolution, comment=comment)
                return candidate
        wanted = status or category
        names = ", ".join(f"{t.name} → {t.to_status}" for t in available) or "none"
        raise ExecutionError(
            f"issue {key} has no transition to {wanted!r} (available: {names})",
            fix="map the status in the sync settings to one the project's workflow has",
        )

    def edit_issue(self, key: str, fields: Mapping[str, Any]) -> None:
        self.session.request("PUT", self._path(f"issue/{key}"), json={"fields": dict(fields)})

    def update_labels(
        self, key: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        operations = [{"add": label} for label in add] + [{"remove": label} for label in remove]
        self.session.request(
            "PUT", self._path(f"issue/{key}"), json={"update": {"labels": operations}}
        )

    def add_comment(self, key: str, body: Document, *, repeatable: bool = True) -> Comment:
        """Add a comment. ``repeatable=False``: a lost answer raises ``CreateOutcomeUnknown``
        rather than risk a second copy (Jira has no idempotency key for comments either)."""
        raw = self.session.request(
            "POST",
            self._path(f"issue/{key}/comment"),
            json={"body": self._rich(body)},
            repeatable=repeatable,
        ).json()
        return self._comment(raw)

    def _comment(self, raw: Mapping[str, Any]) -> Comment:
        return Comment(
            str(raw["id"]), adf_to_text(raw.get("body")), parse_time_ms(raw.get("created"))
        )

    def comments(self, key: str) -> list[Comment]:
        result: list[Comment] = []
        start = 0
        while True:
            raw = self._get(f"issue/{key}/comment", {"startAt": start, "maxResults": 100})
            page = [self._comment(c) for c in raw.get("comments") or ()]
            result.extend(page)
            start += len(page)
            if not page or start >= int(raw.get("total", 0)):
                return result

    def set_property(self, key: str, name: str, value: Any) -> None:
        self.session.request("PUT", self._path(f"issue/{key}/properties/{name}"), json=value)

    def get_property(self, key: str, name: str) -> Any:
        """The property's value, or None when the issue has no such property."""
        response = self.session.request(
            "GET", self._path(f"issue/{key}/properties/{name}"), accept=(404,)
        )
        if response.status_code == 404:
            return None
        return response.json().get("value")

    def changelog(self, key: str) -> list[ChangelogEntry]:
        """Every change to the issue, oldest first."""
        if self.flavor is Flavor.DATA_CENTER:
            # Data Center has no changelog endpoint; the issue expands its histories instead.
            raw = self._get(f"issue/{key}", {"expand": "changelog", "fields": "summary"})
            return [_change(e) for e in (raw.get("changelog") or {}).get("histories") or ()]
        result: list[ChangelogEntry] = []
        start = 0
        while True:
            raw = self._get(f"issue/{key}/changelog", {"startAt": start, "maxResults": 100})
            values = raw.get("values") or ()
            result.extend(_change(entry) for entry in values)
            start += len(values)
            if not values or raw.get("isLast", True):
                return result


def _change(entry: Mapping[str, Any]) -> ChangelogEntry:
    author = entry.get("author") or {}
    return ChangelogEntry(
        id=str(entry["id"]),
        author=author.get("accountId") or author.get("name"),
        created_ms=parse_time_ms(entry.get("created")),
        items=tuple(
            ChangeItem(str(item.get("field", "")), item.get("fromString"), item.get("toString"))
            for item in entry.get("items") or ()
        ),
    )
