"""The reads behind the API: recommendation pages, tickets, sync health, explanations.

Pages are keyset pages: the cursor carries the last row's sort value and id, and the next page
starts strictly after them, so page 5,000 costs what page 1 costs and rows inserted meanwhile
neither repeat nor vanish. Offsets would rescan every row before the page.
"""

from __future__ import annotations

__all__ = [
    "SORTS",
    "CursorError",
    "Page",
    "RecommendationQuery",
    "explain_recommendation",
    "recommendation_page",
    "sync_health",
    "ticket_for",
    "ticket_page",
]

import base64
import functools
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reclaim.errors import ReclaimError
from reclaim.ingest import conform_facts, latest_collection
from reclaim.recommend import RecommendationRecord, Status, load_pack
from reclaim.recommend.records import record_of
from reclaim.rules import RuleSet
from reclaim.store.tables.ingest import fact_chunks
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, sync_cursors, tickets

rec = recommendations.c

SORTS: Final[dict[str, sa.Column[Any]]] = {
    "savings": rec.monthly_savings,
    "id": rec.id,
    "first_seen": rec.first_seen,
    "last_seen": rec.last_seen,
    "status_changed": rec.status_changed_at,
}
"""Sort keys of the recommendation list; every one is NOT NULL, which keyset paging needs."""


class CursorError(ValueError):
    """The cursor is not one this API handed out for this sort order."""


@dataclass(frozen=True)
class RecommendationQuery:
    """Filters and order of a recommendation page; a None filter does not filter."""

    statuses: tuple[Status, ...] = ()
    rule_id: str | None = None
    account_id: str | None = None
    owner: str | None = None
    region: str | None = None
    kind: str | None = None
    min_savings: Decimal | None = None
    sort: str = "savings"
    descending: bool = True
    limit: int = 50
    cursor: str | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.statuses:
            clauses.append(rec.status.in_([status.value for status in self.statuses]))
        for column, value in (
            (rec.rule_id, self.rule_id),
            (rec.account_id, self.account_id),
            (rec.owner, self.owner),
            (rec.region, self.region),
            (rec.kind, self.kind),
        ):
            if value is not None:
                clauses.append(column == value)
        if self.min_savings is not None:
            clauses.append(rec.monthly_savings >= self.min_savings)
        return clauses


@dataclass(frozen=True)
class Page:
    items: list[RecommendationRecord]
    next_cursor: str | None


def _encode_cursor(sort: str, descending: bool, value: Any, row_id: int) -> str:
    shown = value.isoformat() if isinstance(value, datetime) else str(value)
    raw = json.dumps([sort, "desc" if descending else "asc", shown, row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(query: RecommendationQuery) -> tuple[Any, int] | None:
    if not query.cursor:
        return None
    try:
        padded = query.cursor + "=" * (-len(query.cursor) % 4)
        sort, order, shown, row_id = json.loads(base64.urlsafe_b64decode(padded))
        if sort != query.sort or order != ("desc" if query.descending else "asc"):
            raise CursorError("the cursor belongs to another sort order")
        if not isinstance(row_id, int) or not isinstance(shown, str):
            raise CursorError("the cursor is damaged")
        value: Any
        if sort == "savings":
            value = Decimal(shown)
        elif sort == "id":
            value = int(shown)
        else:
            value = datetime.fromisoformat(shown)
    except (ValueError, TypeError, InvalidOperation) as exc:
        if isinstance(exc, CursorError):
            raise
        raise CursorError("the cursor is damaged") from exc
    return value, row_id


def recommendation_page(engine: Engine, query: RecommendationQuery) -> Page:
    """One page of recommendations in the query's order, and the cursor of the next one."""
    if query.sort not in SORTS:
        raise CursorError(f"cannot sort by {query.sort!r}; use one of {sorted(SORTS)}")
    column = SORTS[query.sort]
    clauses = query.clauses()
    after = _decode_cursor(query)
    if after is not None:
        value, row_id = after
        if query.sort == "id":
            clauses.append(rec.id < row_id if query.descending else rec.id > row_id)
        else:
            # Row-value comparison: one range of the (column, id) index on both backends.
            pair = sa.tuple_(column, rec.id)
            bound = sa.tuple_(sa.literal(value, column.type), sa.literal(row_id))
            clauses.append(pair < bound if query.descending else pair > bound)
    order = [column.desc(), rec.id.desc()] if query.descending else [column.asc(), rec.id.asc()]
    if query.sort == "id":
        order = order[:1]
    select = sa.select(recommendations).where(*clauses).order_by(*order).limit(query.limit + 1)
    with engine.connect() as connection:
        rows = [record_of(row) for row in connection.execute(select)]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        attribute = {"savings": "monthly_savings", "status_changed": "status_changed_at"}
        next_cursor = _encode_cursor(
            query.sort,
            query.descending,
            getattr(last, attribute.get(query.sort, query.sort)),
            last.id,
        )
    return Page(rows, next_cursor)


# ----------------------------------------------------------------------------- tickets


@dataclass(frozen=True)
class TicketView:
    id: int
    fingerprint: str
    state: str
    system: str
    project: str
    key: str | None
    issue_id: str | None
    url: str | None
    status: str | None
    status_category: str | None
    resolution: str | None
    jira_updated_ms: int | None
    intent_at: datetime
    created_at: datetime | None
    last_synced_at: datetime | None
    attempts: int
    recommendation_id: int | None = None


def _ticket_select() -> sa.Select[Any]:
    # The view's columns by name: the tickets table also keeps write-back bookkeeping that
    # the API does not show.
    columns = [tickets.c[f.name] for f in fields(TicketView) if f.name != "recommendation_id"]
    return sa.select(*columns, recommendation_tickets.c.recommendation_id).select_from(
        tickets.outerjoin(
            recommendation_tickets, recommendation_tickets.c.ticket_id == tickets.c.id
        )
    )


def ticket_for(engine: Engine, recommendation_id: int) -> TicketView | None:
    """The ticket of a recommendation, if it has one."""
    query = _ticket_select().where(recommendation_tickets.c.recommendation_id == recommendation_id)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else TicketView(**row._mapping)


def ticket_page(
    engine: Engine,
    *,
    project: str | None = None,
    status_category: str | None = None,
    state: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> tuple[list[TicketView], int | None]:
    """Tickets by id, after ``after_id``; and the id to continue after, when there is more."""
    t = tickets.c
    clauses: list[sa.ColumnElement[bool]] = []
    if project is not None:
        clauses.append(t.project == project)
    if status_category is not None:
        clauses.append(t.status_category == status_category)
    if state is not None:
        clauses.append(t.state == state)
    if after_id is not None:
        clauses.append(t.id > after_id)
    query = _ticket_select().where(*clauses).order_by(t.id).limit(limit + 1)
    with engine.connect() as connection:
        rows = [TicketView(**row._mapping) for row in connection.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


# ------------------------------------------------------------------------- sync health


@dataclass(frozen=True)
class CursorHealth:
    source: str
    cursor_at: datetime
    lag_seconds: float
    updated_at: datetime


@dataclass(frozen=True)
class SyncHealth:
    cursors: list[CursorHealth]
    tickets_by_state: dict[str, int]
    tickets_by_status_category: dict[str, int]
    # Intents written before Jira was called and still without a key: each is a ticket whose
    # creation was interrupted; the next distribute run reconciles it.
    open_intents: int
    oldest_intent_at: datetime | None
    last_synced_at: datetime | None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def sync_health(engine: Engine, *, now: datetime | None = None) -> SyncHealth:
    """Where the inbound sync stands: each poll cursor's lag, and the tickets' states."""
    now = now or datetime.now(UTC)
    t = tickets.c
    with engine.connect() as connection:
        cursors = [
            CursorHealth(
                source=row.source,
                cursor_at=(at := datetime.fromtimestamp(row.cursor_ms / 1000, UTC)),
                lag_seconds=max((now - at).total_seconds(), 0.0),
                updated_at=row.updated_at,
            )
            for row in connection.execute(sa.select(sync_cursors).order_by(sync_cursors.c.source))
        ]
        by_state = {
            str(state): int(count)
            for state, count in connection.execute(
                sa.select(t.state, sa.func.count()).group_by(t.state)
            )
        }
        by_category = {
            str(category or "unknown"): int(count)
            for category, count in connection.execute(
                sa.select(t.status_category, sa.func.count())
                .where(t.state == "created")
                .group_by(t.status_category)
            )
        }
        oldest = connection.execute(
            sa.select(sa.func.min(t.intent_at)).where(t.state == "creating")
        ).scalar()
        last_synced = connection.execute(sa.select(sa.func.max(t.last_synced_at))).scalar()
    return SyncHealth(
        cursors=cursors,
        tickets_by_state=by_state,
        tickets_by_status_category=by_category,
        open_intents=by_state.get("creating", 0),
        oldest_intent_at=oldest,
        last_synced_at=last_synced,
        checked_at=now,
    )


# ------------------------------------------------------------------------- explanation


@functools.lru_cache(maxsize=4)
def _cached_pack(path: Path | None, _mtime: float) -> RuleSet:
    return load_pack(path)


def _ruleset(path: Path | None) -> RuleSet:
    """The savings rules, parsed once per file version (a pack is hundreds of lines of YAML)."""
    try:
        mtime = path.stat().st_mtime if path is not None else 0.0
    except OSError:
        mtime = -1.0  # load_pack reports the missing file with its own message
    return _cached_pack(path, mtime)


def explain_recommendation(
    engine: Engine, record: RecommendationRecord, rules: Path | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Why the rule matched the resource, from the latest collected facts.

    Returns ``(explanation, None)`` or ``(None, reason)`` when it cannot be explained (no
    facts, the resource is gone, the rule is not in the rule pack). The facts are read one
    stored chunk at a time and filtered, so a million-resource collection is never held whole.
    """
    collection = latest_collection(engine)
    if collection is None:
        return None, "no facts collected yet"
    wanted = pl.col("resource_id") == record.resource_id
    if record.account_id is not None:
        wanted = wanted & (pl.col("account_id") == record.account_id)
    match: dict[str, Any] | None = None
    with engine.connect() as connection:
        blobs = connection.execute(
            sa.select(fact_chunks.c.parquet)
            .where(fact_chunks.c.collection_id == collection.id)
            .order_by(fact_chunks.c.seq)
        ).scalars()
        for blob in blobs:
            try:
                # Filter while reading, then conform the one row: conforming a whole chunk
                # (200,000 rows) costs more than finding the row.
                rows = pl.scan_parquet(io.BytesIO(blob)).filter(wanted).collect()
                if rows.height:
                    match = conform_facts(rows).collect().row(0, named=True)
                    break
            except pl.exceptions.PolarsError as exc:
                return None, f"the stored facts cannot be read: {exc}"
    if match is None:
        return None, "the resource is not in the latest facts (it may be gone)"
    try:
        ruleset = _ruleset(rules)
    except ReclaimError as exc:
        return None, f"the rule pack cannot be loaded: {exc}"
    if record.rule_id not in {rule.id for rule in ruleset.rules}:
        return None, f"rule {record.rule_id!r} is not in {ruleset.name}"
    as_of = match.get("as_of")
    explanation = ruleset.explain(
        match, rule_ids=[record.rule_id], now=as_of if isinstance(as_of, datetime) else None
    )
    for item in explanation.rules:
        if item.rule_id == record.rule_id:
            return {"text": item.render(), **item.to_dict()}, None
    return None, f"rule {record.rule_id!r} was not evaluated"


def parse_statuses(values: Sequence[str]) -> tuple[Status, ...]:
    """Statuses named in a query string; ValueError names the bad one."""
    out = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                try:
                    out.append(Status(part.strip()))
                except ValueError:
                    raise ValueError(
                        f"unknown status {part.strip()!r}; use one of "
                        + ", ".join(status.value for status in Status)
                    ) from None
    return tuple(out)
