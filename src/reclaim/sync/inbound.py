"""Inbound: poll Jira for the tickets that changed and move their recommendations along.

The watermark is in epoch milliseconds. JQL reads a string date to the minute in the user's
time zone, so the poller sends epoch ms and asks for ``updated >= watermark - overlap AND
updated <= now - lag`` (the lag keeps the lagging search index from hiding a write made just
before ``now``), ordered by updated then key. What was already applied is recognised by
(issue, updated) and skipped; the cursor advances in the transaction that applies the page.
"""

from __future__ import annotations

__all__ = [
    "PollResult",
    "Poller",
    "StatusMapping",
    "apply_events",
    "map_status",
    "record_issue_changes",
]

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reclaim.recommend import Event, LifecycleError, RecommendationStore
from reclaim.store.tables.sync import recommendation_tickets, sync_cursors, tickets
from reclaim.sync.outbound import MANAGED_LABEL
from reclaim.tickets import Issue, JiraClient

# Keys per lookup query: well under SQLite's and PostgreSQL's bound-parameter limits.
_LOOKUP_BATCH = 500


@dataclass(frozen=True)
class StatusMapping:
    """How a ticket's state becomes a recommendation event; overridable per project."""

    wont_do: frozenset[str] = frozenset({"Won't Do", "Won't Fix", "Declined", "Duplicate"})
    snooze: timedelta = timedelta(days=90)
    per_project: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def wont_do_for(self, project: str) -> frozenset[str]:
        return self.per_project.get(project, self.wont_do)


def map_status(
    mapping: StatusMapping,
    project: str,
    before: str | None,
    category: str,
    resolution: str | None,
) -> Event | None:
    """The event a change of status category means (None: nothing for reclaim to do)."""
    was_done = before == "done"
    if category == "done" and not was_done:
        return (
            Event.TICKET_WONT_DO
            if resolution in mapping.wont_do_for(project)
            else Event.TICKET_DONE
        )
    if category != "done" and was_done:
        return Event.TICKET_REOPENED
    return None


@dataclass
class PollResult:
    pages: int = 0
    seen: int = 0
    applied: int = 0
    events: dict[str, int] = field(default_factory=dict)
    watermark_ms: int = 0


class Poller:
    def __init__(
        self,
        client: JiraClient,
        database: Engine,
        *,
        source: str = "jira",
        overlap_ms: int = 120_000,
        lag_ms: int = 30_000,
        mapping: StatusMapping | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        page_size: int = 100,
    ) -> None:
        self.client = client
        self.database = database
        self.source = source
        self.overlap_ms = overlap_ms
        self.lag_ms = lag_ms
        self.mapping = mapping or StatusMapping()
        self.clock_ms = clock_ms
        self.page_size = page_size

    def watermark(self) -> int:
        with self.database.connect() as connection:
            value = connection.execute(
                sa.select(sync_cursors.c.cursor_ms).where(sync_cursors.c.source == self.source)
            ).scalar()
        return int(value or 0)

    def poll(self) -> PollResult:
        result = PollResult(watermark_ms=self.watermark())
        low = max(0, result.watermark_ms - self.overlap_ms)
        high = self.clock_ms() - self.lag_ms
        jql = (
            f"labels = {MANAGED_LABEL} AND updated >= {low} AND updated <= {high} "
            "ORDER BY updated ASC, key ASC"
        )
        token: str | None = None
        while True:
            page = self.client.search(jql, next_page_token=token, max_results=self.page_size)
            result.pages += 1
            result.seen += len(page.issues)
            events = self._apply(page.issues, result)
            for recommendation_id, event, project in events:
                self._event(recommendation_id, event, project, result)
            if not page.next_page_token:
                return result
            token = page.next_page_token

    def _apply(self, issues: tuple[Issue, ...], result: PollResult) -> list[tuple[int, Event, str]]:
        """Record one page and advance the cursor, in one transaction; return the events."""
        with self.database.begin() as connection:
            applied, events = record_issue_changes(connection, issues, self.mapping)
            result.applied += applied
            if issues:
                newest = max(issue.updated_ms for issue in issues)
                result.watermark_ms = max(result.watermark_ms, newest)
                self._save_cursor(connection, result.watermark_ms, datetime.now(UTC))
        return events

    def _save_cursor(self, connection: Connection, cursor_ms: int, now: datetime) -> None:
        updated = connection.execute(
            sync_cursors.update()
            .where(sync_cursors.c.source == self.source)
            .values(cursor_ms=cursor_ms, updated_at=now)
        ).rowcount
        if not updated:
            connection.execute(
                sync_cursors.insert().values(
                    source=self.source, cursor_ms=cursor_ms, updated_at=now
                )
            )

    def _event(
        self, recommendation_id: int, event: Event, project: str, result: PollResult
    ) -> None:
        counts = apply_events(self.database, [(recommendation_id, event, project)], self.mapping)
        for name, count in counts.items():
            result.events[name] = result.events.get(name, 0) + count


def record_issue_changes(
    connection: Connection, issues: Iterable[Issue], mapping: StatusMapping
) -> tuple[int, list[tuple[int, Event, str]]]:
    """Update the ticket rows of ``issues`` that are newer than what was applied.

    Returns how many changed and the recommendation events their status changes mean. An issue
    reclaim did not create, or a version already applied (same or older ``updated``), is
    skipped: that is what makes polling with an overlap and webhook retries harmless.
    """
    issues = list(issues)
    events: list[tuple[int, Event, str]] = []
    known: dict[str, tuple[int, str | None, int]] = {}
    keys = list(dict.fromkeys(issue.key for issue in issues))
    # One lookup per page, not one per issue: the poll reads pages of up to a few thousand.
    for start in range(0, len(keys), _LOOKUP_BATCH):
        for row in connection.execute(
            sa.select(
                tickets.c.id, tickets.c.key, tickets.c.status_category, tickets.c.jira_updated_ms
            ).where(tickets.c.key.in_(keys[start : start + _LOOKUP_BATCH]))
        ):
            known[row.key] = (int(row.id), row.status_category, int(row.jira_updated_ms or 0))
    now = datetime.now(UTC)
    updates: list[dict[str, object]] = []
    for issue in issues:
        found = known.get(issue.key)
        if found is None or found[2] >= issue.updated_ms:
            continue
        ticket_id, before, _ = found
        known[issue.key] = (ticket_id, issue.status_category, issue.updated_ms)
        updates.append(
            {
                "ticket_id": ticket_id,
                "new_status": issue.status,
                "new_status_category": issue.status_category,
                "new_resolution": issue.resolution,
                "new_jira_updated_ms": issue.updated_ms,
                "new_last_synced_at": now,
            }
        )
        event = map_status(mapping, issue.project, before, issue.status_category, issue.resolution)
        if event is None:
            continue
        linked = connection.execute(
            sa.select(recommendation_tickets.c.recommendation_id).where(
                recommendation_tickets.c.ticket_id == ticket_id
            )
        ).scalars()
        events.extend((recommendation_id, event, issue.project) for recommendation_id in linked)
    if updates:
        connection.execute(
            tickets.update()
            .where(tickets.c.id == sa.bindparam("ticket_id"))
            .values(
                status=sa.bindparam("new_status"),
                status_category=sa.bindparam("new_status_category"),
                resolution=sa.bindparam("new_resolution"),
                jira_updated_ms=sa.bindparam("new_jira_updated_ms"),
                last_synced_at=sa.bindparam("new_last_synced_at"),
            ),
            updates,
        )
    return len(updates), events


def apply_events(
    database: Engine, events: Iterable[tuple[int, Event, str]], mapping: StatusMapping
) -> dict[str, int]:
    """Apply ticket events to the recommendations; returns how many of each took effect."""
    store = RecommendationStore(database)
    counts: dict[str, int] = {}
    for recommendation_id, event, _project in events:
        snooze = mapping.snooze if event is Event.TICKET_WONT_DO else None
        try:
            store.apply_event(recommendation_id, event, snooze=snooze)
        except LifecycleError:
            # The recommendation already moved on (a run saw the resource gone, say).
            continue
        counts[event.value] = counts.get(event.value, 0) + 1
    return counts
