"""The database side of exactly-once: intents before the call, keys after it.

Each write is its own short transaction, committed before the next Jira call, so whatever
instant the process dies at, the database says either "nothing decided", "decided, maybe
created" (``creating``: reconcile before creating again) or "created as KEY".
"""

from __future__ import annotations

__all__ = ["TicketLedger", "TicketRow"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from reclaim.store.tables.sync import recommendation_tickets, tickets

# Values per IN list (and rows per multi-row INSERT): well under SQLite's bound-parameter
# limit, and few round trips.
_IN_BATCH = 500

# PostgreSQL takes a chunk's rows as one JSON parameter (see TicketLedger._record_keys): each
# statement is one execution, compiled and parsed once, whatever the chunk's size. JSON text,
# not arrays: psycopg dumps a list element by element in Python (~100 us of the worker's CPU
# for 50 fingerprints, eight such lists a chunk), msgspec writes the JSON in C (~5 us), and
# the server reads either as fast. They are sent on psycopg's own cursor (``%(name)s``
# parameters): through SQLAlchemy each execution of a textual statement also built its
# result's metadata from the cursor's description, and that, with the bind processing, cost
# the worker more than psycopg's execution itself.
_CLAIM_INTENTS = (
    "INSERT INTO tickets (fingerprint, state, system, project, intent_at, attempts) "
    "SELECT r->>0, 'creating', 'jira', r->>1, %(now)s, 1 "
    "FROM json_array_elements(CAST(%(rows)s AS json)) AS r "
    "ON CONFLICT (fingerprint) DO NOTHING RETURNING tickets.fingerprint"
)
# ORDER BY under FOR UPDATE locks the rows in that order: the same order in every worker.
_LOCK_TICKETS = (
    "SELECT id FROM tickets WHERE fingerprint = "
    "ANY(ARRAY(SELECT json_array_elements_text(CAST(%(fingerprints)s AS json)))) "
    "ORDER BY fingerprint FOR UPDATE"
)
# The keys and the links in one statement (the rows are locked already, in order, by
# _LOCK_TICKETS): the UPDATE hands the ids of the rows it recorded to the links' INSERT.
_RECORD_CREATED = (
    "WITH v AS (SELECT r->>0 AS fingerprint, r->>1 AS key, r->>2 AS issue_id, r->>3 AS url, "
    "CAST(r->>4 AS bigint) AS recommendation_id "
    "FROM json_array_elements(CAST(%(rows)s AS json)) AS r), "
    "recorded AS (UPDATE tickets SET state = 'created', key = v.key, "
    "issue_id = v.issue_id, url = v.url, created_at = %(now)s FROM v "
    "WHERE tickets.fingerprint = v.fingerprint RETURNING tickets.id, tickets.fingerprint) "
    "INSERT INTO recommendation_tickets (recommendation_id, ticket_id) "
    "SELECT v.recommendation_id, recorded.id FROM v JOIN recorded "
    "ON recorded.fingerprint = v.fingerprint WHERE v.recommendation_id IS NOT NULL "
    "ON CONFLICT (recommendation_id) DO NOTHING"
)
# For the rest of the transaction, every statement is planned for its own parameters and the
# table as it is now. psycopg prepares a statement on its fifth execution and PostgreSQL then
# keeps a generic plan, made while ``tickets`` was still small (a first distribution starts
# from an empty table, and ANALYZE comes a minute later at best): a sequential scan, kept as
# the table grows. The foreign key check of each link (PostgreSQL's own prepared query) did
# the same. Measured over 6,000 tickets in chunks of 50: 5,800 sequential scans of ``tickets``
# reading 16 M rows, and 0.50 ms of server CPU per ticket; with custom plans 400 and 0.16 ms.
# Custom plans alone still scanned: before the first ANALYZE the planner believes the table
# holds a few hundred rows, so locking a chunk's rows by fingerprint, and the UPDATE's join
# on it, read the whole table for every chunk (each chunk longer than the last; 3,000 rows
# read to find 50 at 3,000 tickets). Every statement of this transaction reaches its rows
# through a unique index, so sequential scans are off for it.
_CUSTOM_PLANS = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('enable_seqscan', 'off', true)"
)

# (fingerprint, recommendation id, key, issue id, url) of a ticket created.
_Created = tuple[str, int | None, str, str, str]

# Run inside the transaction that records tickets created, with their recommendation ids.
AlsoRecorded = Callable[[Connection, list[int]], None]


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


def _driver(connection: Connection) -> Any:
    """psycopg's connection under SQLAlchemy's, in the same transaction."""
    return connection.connection.driver_connection


def _json(value: object) -> str:
    # Text, which the statements cast to json (bytes would be sent as bytea).
    return msgspec.json.encode(value).decode()


def _utc(now: datetime) -> datetime:
    # What UtcDateTime does for SQLAlchemy's statements: a naive time is a bug, not UTC.
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: stored times must carry a zone")
    return now.astimezone(UTC)


class TicketLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgresql = engine.dialect.name == "postgresql"

    def get(self, fingerprint: str) -> TicketRow | None:
        with self.engine.connect() as connection:
            raw = connection.execute(
                sa.select(tickets).where(tickets.c.fingerprint == fingerprint)
            ).first()
        return None if raw is None else _row(raw)

    def get_many(self, fingerprints: Sequence[str]) -> dict[str, TicketRow]:
        """The rows of those of ``fingerprints`` that have one, by fingerprint; one query per
        500 fingerprints (a chunk's worth of round trips instead of one per ticket)."""
        found: dict[str, TicketRow] = {}
        wanted = list(dict.fromkeys(fingerprints))
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), _IN_BATCH):
                batch = wanted[start : start + _IN_BATCH]
                for raw in connection.execute(
                    sa.select(tickets).where(tickets.c.fingerprint.in_(batch))
                ):
                    row = _row(raw)
                    found[row.fingerprint] = row
        return found

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
        self.claim_intents(items, now)

    def claim_intents(self, items: Sequence[tuple[str, str]], now: datetime) -> set[str]:
        """Intents for those (fingerprint, project) pairs that have no row yet; one statement
        and one commit (on PostgreSQL the statement's own, in autocommit). Returns the
        fingerprints given an intent now: the others already had a row (a ticket, or an
        intent of an earlier attempt or of another worker)."""
        projects = dict(items)
        if not projects:
            return set()
        # A row of another worker's in-flight transaction makes ON CONFLICT wait for it and
        # then skip the fingerprint (never a unique violation).
        if self._postgresql:
            # One statement is its own transaction: in autocommit it is committed when it
            # returns, without the two round trips of a BEGIN and a COMMIT around it.
            with self.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                with _driver(connection).cursor() as cursor:
                    cursor.execute(
                        _CLAIM_INTENTS, {"rows": _json(list(projects.items())), "now": _utc(now)}
                    )
                    return {row[0] for row in cursor.fetchall()}
        rows = [
            {
                "fingerprint": fp,
                "state": "creating",
                "system": "jira",
                "project": project,
                "intent_at": now,
                "attempts": 1,
            }
            for fp, project in projects.items()
        ]
        # Executed with a list of rows, SQLAlchemy sends one multi-row INSERT per 1,000 rows
        # from a cached compilation.
        statement = (
            self._insert()
            .on_conflict_do_nothing(index_elements=[tickets.c.fingerprint])
            .returning(tickets.c.fingerprint)
        )
        with self.engine.begin() as connection:
            return set(connection.execute(statement, rows).scalars())

    def _insert(self) -> Any:
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(tickets)
        return sqlite.insert(tickets)

    def restamp_intents(self, fingerprints: Sequence[str], now: datetime) -> None:
        """These intents are about to be sent (or were, and the answer was lost) at ``now``:
        a later reconcile counts its grace period from then."""
        if not fingerprints:
            return
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.fingerprint.in_(fingerprints), tickets.c.state == "creating")
                .values(intent_at=now)
            )

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
        self.restamp_intents(fingerprints, now)

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
        *,
        forget: Sequence[str] = (),
        also: AlsoRecorded | None = None,
    ) -> None:
        """(fingerprint, recommendation id, key, issue id, url) rows, in one transaction.

        In the same transaction: the intents of ``forget`` (creates Jira refused) are dropped,
        and ``also`` runs with the recommendation ids of the rows (the distributor marks them
        ticketed there, so a recorded ticket and its ticketed recommendation commit together).
        Set-based, not three statements per ticket: on PostgreSQL the rows are locked in
        fingerprint order, then one UPDATE and one INSERT ... SELECT for their links take the
        chunk's columns as arrays; on SQLite one UPDATE and one INSERT ... SELECT are executed
        for all the rows.
        """
        if not created and not forget:
            return
        with self.engine.begin() as connection:
            if forget:
                connection.execute(
                    tickets.delete().where(
                        tickets.c.fingerprint.in_(list(forget)), tickets.c.state == "creating"
                    )
                )
            if not created:
                return
            # In fingerprint order, so two workers recording overlapping rows (a chunk run
            # again after a lost lease) lock them in the same order.
            ordered = sorted(created)
            links: dict[int, str] = {}
            for fp, rid, _, _, _ in created:
                if rid is not None:
                    links.setdefault(rid, fp)
            self._record_keys(connection, ordered, links, now)
            if also is not None:
                also(connection, [rid for _, rid, _, _, _ in created if rid is not None])

    def _record_keys(
        self, connection: Connection, ordered: list[_Created], links: dict[int, str], now: datetime
    ) -> None:
        if not self._postgresql:
            self._record_keys_by_row(connection, ordered, links, now)
            return
        # PostgreSQL: each statement takes the whole chunk as one JSON value, so a chunk costs
        # two statements (the lock, then the keys with their links) after the plans' settings,
        # where a statement per row (executemany) cost the worker and the server a bind and
        # an execution for every ticket: most of the CPU of recording a chunk.
        fingerprints = [fp for fp, _, _, _, _ in ordered]
        # A recommendation linked twice in one chunk keeps its first ticket, as ``links`` says.
        first = {fp: rid for rid, fp in links.items()}
        driver = _driver(connection)
        # One round trip for the three (and the transaction's BEGIN, when they open it): in a
        # pipeline they are sent together and run in order, each after the one before.
        with driver.pipeline(), driver.cursor() as cursor:
            cursor.execute(_CUSTOM_PLANS)
            cursor.execute(_LOCK_TICKETS, {"fingerprints": _json(fingerprints)})
            rows = [
                (fp, key, issue_id, url, first.get(fp)) for fp, _, key, issue_id, url in ordered
            ]
            cursor.execute(_RECORD_CREATED, {"rows": _json(rows), "now": _utc(now)})

    def _record_keys_by_row(
        self, connection: Connection, ordered: list[_Created], links: dict[int, str], now: datetime
    ) -> None:
        # SQLite runs in-process: a statement per row costs no round trip there.
        connection.execute(
            tickets.update()
            .where(tickets.c.fingerprint == sa.bindparam("b_fingerprint"))
            .values(
                state="created",
                key=sa.bindparam("b_key"),
                issue_id=sa.bindparam("b_issue_id"),
                url=sa.bindparam("b_url"),
                created_at=now,
            ),
            [
                {"b_fingerprint": fp, "b_key": key, "b_issue_id": issue_id, "b_url": url}
                for fp, _, key, issue_id, url in ordered
            ],
        )
        if links:
            # A recommendation already linked keeps its ticket (the first one recorded).
            link = self._link_insert()
            connection.execute(
                link, [{"b_rid": rid, "b_fingerprint": fp} for rid, fp in links.items()]
            )

    def _link_insert(self) -> Any:
        insert = sqlite.insert(recommendation_tickets)
        source = sa.select(
            sa.bindparam("b_rid", type_=recommendation_tickets.c.recommendation_id.type),
            tickets.c.id,
        ).where(tickets.c.fingerprint == sa.bindparam("b_fingerprint"))
        return insert.from_select(
            [recommendation_tickets.c.recommendation_id, recommendation_tickets.c.ticket_id],
            source,
        ).on_conflict_do_nothing(index_elements=[recommendation_tickets.c.recommendation_id])

    def replace_key(self, fingerprint: str, key: str, issue_id: str, url: str) -> None:
        """The duplicate sweep found an older issue for this fingerprint: it is the ticket."""
        with self.engine.begin() as connection:
            connection.execute(
                tickets.update()
                .where(tickets.c.fingerprint == fingerprint)
                .values(key=key, issue_id=issue_id, url=url)
            )
