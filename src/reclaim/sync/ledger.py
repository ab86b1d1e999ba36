"""The database side of exactly-once: intents before the call, keys after it.

Each write is its own short transaction, committed before the next Jira call, so whatever
instant the process dies at, the database says either "nothing decided", "decided, maybe
created" (``creating``: reconcile before creating again) or "created as KEY".
"""

from __future__ import annotations

__all__ = ["TicketLedger", "TicketRow"]

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.store.tables.sync import recommendation_tickets, tickets


@dataclass(frozen=True)
class TicketRow:
    id: int
    fingerprint: str
    state: str
    project: str
    key: str | None
    issue_id: str | None
    url: str | None
    status: str | None
    status_category: str | None
    resolution: str | None
    intent_at: datetime
    attempts: int


def _row(raw: sa.Row[object]) -> TicketRow:
    m = raw._mapping
    return TicketRow(
        id=int(m["id"]),
        fingerprint=str(m["fingerprint"]),
        state=str(m["state"]),
        project=str(m["project"]),
        key=m["key"],
        issue_id=m["issue_id"],
        url=m["url"],
        status=m["status"],
        status_category=m["status_category"],
        resolution=m["resolution"],
        intent_at=m["intent_at"],
        attempts=int(m["attempts"]),
    )


class TicketLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, fingerprint: str) -> TicketRow | None:
        with self.engine.connect() as connection:
            raw = connection.execute(
                sa.select(tickets).where(tickets.c.fingerprint == fingerprint)
            ).first()
        return None if raw is None else _row(raw)

    def all(self, *, limit: int | None = None) -> list[TicketRow]:
        query = sa.select(tickets).order_by(tickets.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [_row(r) for r in connection.execute(query)]

    def find(self, key: str) -> TicketRow | None:
        column = tickets.c.key if not key.isdigit() else tickets.c.id
        value: object = key if not key.isdigit() else int(key)
        with self.engine.connect() as connection:
            raw = connection.execute(sa.select(tickets).where(column == value)).first()
        return None if raw is None else _row(raw)

    def record_intents(self, items: list[tuple[str, str]], now: datetime) -> None:
        """Intents for (fingerprint, project) pairs that have none yet; one transaction."""
        if not items:
            return
        with self.engine.begin() as connection:
            existing = set(
                connection.execute(
                    sa.select(tickets.c.fingerprint).where(
                        tickets.c.fingerprint.in_([fp for fp, _ in items])
                    )
                ).scalars()
            )
            rows = [
                {
                    "fingerprint": fp,
                    "state": "creating",
                    "system": "jira",
                    "project": project,
                    "intent_at": now,
                    "attempts": 1,
                }
                for fp, project in items
                if fp not in existing
            ]
            if rows:
                connection.execute(tickets.insert(), rows)

    def retry_intent(self, fingerprint: str, now: datetime) -> None:
        """A re-create is about to be sent: restart the grace period from now."""
        self.retry_intents([fingerprint], now)

    def retry_intents(self, fingerprints: Sequence[str], now: datetime) -> None:
        """Re-creates are about to be sent: restart their grace period from now; one commit."""
        if not fingerprints:
            return
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.fingerprint.in_(fingerprints), tickets.c.state == "creating")
                .values(intent_at=now, attempts=tickets.c.attempts + 1)
            )

    def outcome_unknown(self, fingerprints: Sequence[str], now: datetime) -> None:
        """Jira's answer to these creates was lost at ``now``: count the grace period from then.

        The create may have been applied any time until the answer was lost, so a grace period
        counted from the intent can end before the search index shows the issue.
        """
        if not fingerprints:
            return
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.fingerprint.in_(fingerprints), tickets.c.state == "creating")
                .values(intent_at=now)
            )

    def forget_intent(self, fingerprint: str) -> None:
        """Jira refused the create outright (400): nothing exists, so nothing is pending."""
        self.forget_intents([fingerprint])

    def forget_intents(self, fingerprints: Sequence[str]) -> None:
        """Jira refused these creates outright: nothing exists, so nothing is pending."""
        if not fingerprints:
            return
        with self.engine.begin() as connection:
            connection.execute(
                tickets.delete().where(
                    tickets.c.fingerprint.in_(fingerprints), tickets.c.state == "creating"
                )
            )

    def record_created(
        self,
        created: list[tuple[str, int | None, str, str, str]],
        now: datetime,
    ) -> None:
        """(fingerprint, recommendation id, key, issue id, url) rows, in one transaction."""
        if not created:
            return
        with self.engine.begin() as connection:
            for fingerprint, recommendation_id, key, issue_id, url in created:
                connection.execute(
                    tickets.update()
                    .where(tickets.c.fingerprint == fingerprint)
                    .values(state="created", key=key, issue_id=issue_id, url=url, created_at=now)
                )
                if recommendation_id is None:
                    continue
                ticket_id = connection.execute(
                    sa.select(tickets.c.id).where(tickets.c.fingerprint == fingerprint)
                ).scalar_one()
                linked = connection.execute(
                    sa.select(recommendation_tickets.c.ticket_id).where(
                        recommendation_tickets.c.recommendation_id == recommendation_id
                    )
                ).first()
                if linked is None:
                    connection.execute(
                        recommendation_tickets.insert().values(
                            recommendation_id=recommendation_id, ticket_id=ticket_id
                        )
                    )

    def replace_key(self, fingerprint: str, key: str, issue_id: str, url: str) -> None:
        """The duplicate sweep found an older issue for this fingerprint: it is the ticket."""
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.fingerprint == fingerprint)
                .values(key=key, issue_id=issue_id, url=url)
            )
