"""The simulated Jira site: projects, issues, workflows, comments, properties, changelog, index.

Everything happens under one lock so the HTTP server, the actor and tests can share it. Search
reads an index that lags writes by ``index_lag`` seconds, as Jira Cloud's does; a search that
names an issue in ``reconcileIssues`` sees that issue as it is now.
"""

from __future__ import annotations

__all__ = ["JiraFault", "JiraState", "SimComment", "SimIssue"]

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from reclaim.tickets.simulator.body import is_document, plain
from reclaim.tickets.simulator.jql import JqlError, parse_jql
from reclaim.tickets.simulator.workflow import RESOLUTIONS, Project, default_projects

SETTABLE = frozenset(
    {
        "project",
        "summary",
        "issuetype",
        "description",
        "labels",
        "components",
        "assignee",
        "priority",
        "resolution",
    }
)
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}


class JiraFault(Exception):
    """A request Jira would refuse: rendered as its ``ErrorCollection`` with ``status``."""

    def __init__(
        self, status: int, messages: Sequence[str] = (), errors: Mapping[str, str] | None = None
    ):
        self.status = status
        self.messages = list(messages)
        self.errors = dict(errors or {})
        super().__init__(f"{status}: {self.messages} {self.errors}")

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


@dataclass
class SimComment:
    id: int
    author: str
    body: Any
    created_ms: int


@dataclass
class SimChange:
    id: int
    author: str
    created_ms: int
    items: list[tuple[str, str | None, str | None]]


@dataclass
class SimIssue:
    id: int
    key: str
    project: Project
    issue_type: tuple[str, str]
    summary: str
    # As a create gave it: a decoded value, or a RawJson kept as text until an answer shows it.
    description: Any
    labels: list[str]
    components: list[str]
    assignee: str | None
    priority: str | None
    status: str
    resolution: str | None
    created_ms: int
    updated_ms: int
    creator: str
    properties: dict[str, Any] = field(default_factory=dict)
    comments: list[SimComment] = field(default_factory=list)
    changelog: list[SimChange] = field(default_factory=list)

    @property
    def status_category(self) -> str:
        return self.project.workflow.status(self.status).category

    def snapshot(self) -> dict[str, Any]:
        """The values JQL sees."""
        return {
            "id": self.id,
            "project": self.project.key,
            "key": self.key,
            "labels": tuple(self.labels),
            "status": self.status,
            "statuscategory": self.status_category,
            "resolution": self.resolution,
            "issuetype": self.issue_type[1],
            "summary": self.summary,
            "created": self.created_ms,
            "updated": self.updated_ms,
        }


Listener = Callable[[str, SimIssue, "SimChange | None", "SimComment | None"], None]


class JiraState:
    def __init__(
        self,
        projects: Iterable[Project] | None = None,
        *,
        index_lag: float = 0.0,
        time_zone: str = "UTC",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.projects = {
            p.key: p for p in (projects if projects is not None else default_projects())
        }
        self.index_lag = index_lag
        self.zone = ZoneInfo(time_zone)
        self.clock = clock
        self.issues: dict[int, SimIssue] = {}
        self.by_key: dict[str, SimIssue] = {}
        self._ids = itertools.count(10000)
        self._other_ids = itertools.count(50000)
        self._index: dict[int, dict[str, Any]] = {}
        self._pending: deque[tuple[float, int, dict[str, Any]]] = deque()
        # Issues written since the index was last read, in write order (index_lag 0 only).
        self._stale: dict[int, None] = {}
        self._cursors: dict[int, list[int]] = {}
        self._cursor_ids = itertools.count(1)
        self.listeners: list[Listener] = []

    # -- time and index ------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _touch(self, issue: SimIssue) -> None:
        # Strictly increasing per issue, so two edits in one millisecond still order.
        issue.updated_ms = max(self.now_ms(), issue.updated_ms + 1)
        if self.index_lag:
            self._stale.pop(issue.id, None)
            self._pending.append((self.clock() + self.index_lag, issue.id, issue.snapshot()))
        else:
            # Without a lag the index shows every issue as it is now: its snapshot is taken
            # when a search next reads the index, not at each write (most are never searched).
            self._stale[issue.id] = None

    def _refresh_index(self) -> None:
        now = self.clock()
        while self._pending and self._pending[0][0] <= now:
            _, issue_id, snapshot = self._pending.popleft()
            self._index[issue_id] = snapshot
        for issue_id in self._stale:
            self._index[issue_id] = self.issues[issue_id].snapshot()
        self._stale.clear()

    def _emit(
        self,
        event: str,
        issue: SimIssue,
        change: SimChange | None = None,
        comment: SimComment | None = None,
    ) -> None:
        for listener in list(self.listeners):
            listener(event, issue, change, comment)

    # -- lookups -------------------------------------------------------------------------

    def issue(self, id_or_key: str) -> SimIssue:
        with self.lock:
            found = self.by_key.get(id_or_key.upper())
            if found is None and id_or_key.isdigit():
                found = self.issues.get(int(id_or_key))
            if found is None:
                raise JiraFault(
                    404, ["Issue does not exist or you do not have permission to see it."]
                )
            return found

    def project(self, id_or_key: str) -> Project:
        found = self.projects.get(id_or_key)
        if found is not None:
            return found
        for project in self.projects.values():
            if id_or_key in (project.key, project.id):
                return project
        raise JiraFault(404, [f"No project could be found with key '{id_or_key}'."])

    # -- create and edit -----------------------------------------------------------------

    def create(
        self,
        fields: Mapping[str, Any],
        *,
        author: str,
        adf: bool,
        properties: Sequence[Mapping[str, Any]] = (),
    ) -> SimIssue:
        with self.lock:
            errors: dict[str, str] = {}
            project = None
            raw_project = fields.get("project") or {}
            project_ref = str(raw_project.get("key") or raw_project.get("id") or "")
            if not project_ref:
                errors["project"] = "Specify a valid project ID or key"
            else:
                try:
                    project = self.project(project_ref)
                except JiraFault:
                    errors["project"] = f"valid project is required (no project '{project_ref}')"
            for name in fields:
                if name not in SETTABLE and not name.startswith("customfield_"):
                    errors[name] = (
                        f"Field '{name}' cannot be set. "
                        "It is not on the appropriate screen, or unknown."
                    )
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            elif len(summary) > 255:
                errors["summary"] = "Summary must be less than 255 characters."
            issue_type = None
            if project is not None:
                raw_type = fields.get("issuetype") or {}
                wanted = raw_type.get("name") or raw_type.get("id")
                issue_type = (
                    _issue_types(project.issue_types).get(wanted)
                    if isinstance(wanted, str)
                    else None
                )
                if issue_type is None:
                    errors["issuetype"] = (
                        "Specify an issue type" if not wanted else "valid issue type is required"
                    )
            self._check_common(fields, project, errors, adf=adf)
            if errors:
                raise JiraFault(400, [], errors)
            assert project is not None
            assert issue_type is not None
            now = self.now_ms()
            number = project.next_number
            project.next_number += 1
            issue = SimIssue(
                id=next(self._ids),
                key=f"{project.key}-{number}",
                project=project,
                issue_type=issue_type,
                summary=str(summary),
                description=fields.get("description"),
                labels=list(fields.get("labels") or ()),
                components=[c.get("name") or c.get("id") for c in fields.get("components") or ()],
                assignee=_user_of(fields.get("assignee")),
                priority=(fields.get("priority") or {}).get("name") or "Medium",
                status=project.workflow.initial,
                resolution=None,
                created_ms=now,
                updated_ms=now - 1,
                creator=author,
                properties={str(p["key"]): p.get("value") for p in properties},
            )
            self.issues[issue.id] = issue
            self.by_key[issue.key] = issue
            self._touch(issue)
            self._emit("jira:issue_created", issue)
            return issue

    def _check_common(
        self,
        fields: Mapping[str, Any],
        project: Project | None,
        errors: dict[str, str],
        *,
        adf: bool,
    ) -> None:
        if "description" in fields and fields["description"] is not None:
            description = fields["description"]
            if adf and not is_document(description):
                errors["description"] = (
                    "Operation value must be an Atlassian Document "
                    "(see the Atlassian Document Format)"
                )
            if not adf and not isinstance(plain(description), str):
                errors["description"] = "Operation value must be a string"
        for label in fields.get("labels") or ():
            if not isinstance(label, str) or " " in label or not label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
            elif len(label) > 255:
                errors["labels"] = "The label must not exceed 255 characters."
        if project is not None:
            known = _component_names(project.components)
            for component in fields.get("components") or ():
                name = component.get("name") or component.get("id")
                if name not in known:
                    errors["components"] = f"Component name '{name}' is not valid"
        priority = fields.get("priority")
        if (
            priority
            and (priority.get("name") or "") not in PRIORITIES
            and priority.get("id") not in PRIORITIES.values()
        ):
            errors["priority"] = "The priority selected is invalid."

    def edit(
        self,
        key: str,
        fields: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        author: str,
        adf: bool,
    ) -> None:
        with self.lock:
            issue = self.issue(key)
            errors: dict[str, str] = {}
            for name in list(fields) + list(update):
                if (
                    name not in SETTABLE - {"project", "issuetype", "resolution"}
                    and name != "comment"
                    and not name.startswith("customfield_")
                ):
                    errors[name] = (
                        f"Field '{name}' cannot be set. "
                        "It is not on the appropriate screen, or unknown."
                    )
            self._check_common(fields, issue.project, errors, adf=adf)
            if errors:
                raise JiraFault(400, [], errors)
            items: list[tuple[str, str | None, str | None]] = []
            labels = list(issue.labels)
            if "labels" in fields:
                labels = list(fields["labels"] or ())
            for op in update.get("labels") or ():
                if "add" in op and op["add"] not in labels:
                    labels.append(op["add"])
                if "remove" in op and op["remove"] in labels:
                    labels.remove(op["remove"])
                if "set" in op:
                    labels = list(op["set"])
            if labels != issue.labels:
                items.append(("labels", " ".join(issue.labels) or None, " ".join(labels) or None))
                issue.labels = labels
            if "summary" in fields and fields["summary"] != issue.summary:
                items.append(("summary", issue.summary, fields["summary"]))
                issue.summary = fields["summary"]
            if "description" in fields:
                items.append(("description", None, None))
                issue.description = fields["description"]
            if "priority" in fields:
                new = (fields["priority"] or {}).get("name")
                items.append(("priority", issue.priority, new))
                issue.priority = new
            if "assignee" in fields:
                new = _user_of(fields["assignee"])
                items.append(("assignee", issue.assignee, new))
                issue.assignee = new
            if "components" in fields:
                issue.components = [c.get("name") for c in fields["components"] or ()]
            comments = [op["add"] for op in update.get("comment") or () if "add" in op]
            self._record(issue, author, items)
            for comment in comments:
                self.comment(key, comment.get("body"), author=author)

    def _record(
        self, issue: SimIssue, author: str, items: list[tuple[str, str | None, str | None]]
    ) -> SimChange | None:
        if not items:
            return None
        self._touch(issue)
        change = SimChange(next(self._other_ids), author, issue.updated_ms, items)
        issue.changelog.append(change)
        self._emit("jira:issue_updated", issue, change)
        return change

    def transition(
        self,
        key: str,
        transition_id: str,
        *,
        author: str,
        resolution: str | None = None,
        comment: Any = None,
    ) -> None:
        with self.lock:
            issue = self.issue(key)
            chosen = next(
                (
                    t
                    for t in issue.project.workflow.available(issue.status)
                    if t.id == str(transition_id)
                ),
                None,
            )
            if chosen is None:
                raise JiraFault(
                    400, [f"Transition id '{transition_id}' is not valid for this issue."]
                )
            if resolution is not None and resolution not in RESOLUTIONS:
                raise JiraFault(400, [], {"resolution": f"Resolution '{resolution}' is not valid."})
            target = issue.project.workflow.status(chosen.to)
            items: list[tuple[str, str | None, str | None]] = [
                ("status", issue.status, target.name)
            ]
            new_resolution = (resolution or "Done") if target.category == "done" else None
            if new_resolution != issue.resolution:
                items.append(("resolution", issue.resolution, new_resolution))
            issue.status = target.name
            issue.resolution = new_resolution
            self._record(issue, author, items)
            if comment is not None:
                self.comment(key, comment, author=author)

    def comment(self, key: str, body: Any, *, author: str) -> SimComment:
        with self.lock:
            issue = self.issue(key)
            if body is None or body == "":
                raise JiraFault(400, [], {"comment": "Comment body can not be empty!"})
            comment = SimComment(next(self._other_ids), author, body, self.now_ms())
            issue.comments.append(comment)
            self._touch(issue)
            self._emit("comment_created", issue, None, comment)
            return comment

    def set_property(self, key: str, name: str, value: Any) -> bool:
        """Store an entity property; True when it is new."""
        with self.lock:
            issue = self.issue(key)
            if len(name) > 255:
                raise JiraFault(400, ["The property key cannot be longer than 255 characters."])
            created = name not in issue.properties
            issue.properties[name] = value
            return created

    # -- search --------------------------------------------------------------------------

    def search(self, jql: str, *, reconcile: Sequence[int] = ()) -> list[SimIssue]:
        """All issues matching ``jql`` as the (lagging) index sees them, in the asked order."""
        try:
            query = parse_jql(jql)
        except JqlError as exc:
            raise JiraFault(400, [str(exc)]) from exc
        with self.lock:
            self._refresh_index()
            snapshots = dict(self._index)
            for issue_id in reconcile:
                live = self.issues.get(int(issue_id))
                if live is not None:
                    snapshots[live.id] = live.snapshot()
            try:
                matched = [s for s in snapshots.values() if query.matches(s, self.zone)]
            except (KeyError, ValueError, JqlError) as exc:
                raise JiraFault(400, [str(exc)]) from exc
            matched.sort(key=lambda s: s["id"])
            for order in reversed(query.order):
                matched.sort(
                    key=partial(_sort_key, field_name=order.field), reverse=order.descending
                )
            return [self.issues[s["id"]] for s in matched]

    def open_cursor(self, issues: list[SimIssue]) -> int:
        with self.lock:
            cursor = next(self._cursor_ids)
            self._cursors[cursor] = [i.id for i in issues]
            return cursor

    def cursor(self, cursor: int) -> list[SimIssue]:
        with self.lock:
            ids = self._cursors.get(cursor)
            if ids is None:
                raise JiraFault(400, ["The provided next page token is invalid or expired."])
            return [self.issues[i] for i in ids]


def _sort_key(snapshot: Mapping[str, Any], field_name: str) -> Any:
    if field_name == "key":
        project, _, number = str(snapshot["key"]).partition("-")
        return (project, int(number))
    value = snapshot.get(field_name)
    if isinstance(value, tuple):
        return " ".join(value)
    return (value is None, value if value is not None else 0)


@lru_cache(maxsize=64)
def _issue_types(types: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, str]]:
    """A project's issue types by id and by name, the first listed winning as in a scan."""
    found: dict[str, tuple[str, str]] = {}
    for issue_type in types:
        for name in issue_type:
            found.setdefault(name, issue_type)
    return found


@lru_cache(maxsize=64)
def _component_names(components: tuple[tuple[str, str], ...]) -> frozenset[str]:
    return frozenset(name for component in components for name in component)


def _user_of(raw: Any) -> str | None:
    if not raw:
        return None
    user = raw.get("accountId") or raw.get("name") or raw.get("id")
    return str(user) if user else None
