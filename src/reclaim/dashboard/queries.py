"""The dashboard's SQL: every page is a handful of indexed queries, never a Python-side scan.

Lists page by keyset (``WHERE (sort, id) < (last sort, last id) ORDER BY sort, id LIMIT n``)
on the indexes of migration ``recommend_0002``, so page 2,000 of a million rows costs what page
1 does. The overview's aggregates read every row by nature; :class:`OverviewCache` keeps them for
a short while so a dashboard left open does not rescan a million rows on each refresh.
"""

from __future__ import annotations

__all__ = [
    "PAGE_SIZES",
    "SORTS",
    "Cursor",
    "FunnelRow",
    "ListFilters",
    "ListPage",
    "Overview",
    "OverviewCache",
    "SyncHealth",
    "TicketInfo",
    "list_recommendations",
    "load_overview",
    "load_sync_health",
    "recommendation_row",
    "ticket_of",
]

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reclaim.dashboard.units import TICKET_CHUNK_STEPS, tickets_in_item
from reclaim.durable.schema import runs as durable_runs
from reclaim.durable.schema import steps as durable_steps
from reclaim.store.tables.recommend import RECOMMENDATION_STATUSES, recommendations
from reclaim.store.tables.sync import recommendation_tickets, sync_cursors, tickets

rec = recommendations.c

PAGE_SIZES: Final = (25, 50, 100, 200)

SORTS: Final[dict[str, tuple[str, bool]]] = {
    # name: (column, descending)
    "savings": ("monthly_savings", True),
    "-savings": ("monthly_savings", False),
    "newest": ("id", True),
    "oldest": ("id", False),
}
"""Sorts the list offers; each is served by an index ending in ``id`` (see recommend_0002)."""


# ---------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class FunnelRow:
    """Savings of one group at each stage: found, ticketed, ticket done, realized."""

    key: str | None
    count: int
    found: float
    ticketed: float
    ticketed_count: int
    done: float
    done_count: int
    realized: float
    realized_count: int


@dataclass(frozen=True)
class Overview:
    """Everything the overview page shows, in the dominant currency."""

    currency: str | None
    other_currencies: dict[str, float]
    total: FunnelRow
    by_status: dict[str, tuple[int, float]]
    by_owner: list[FunnelRow]
    by_account: list[FunnelRow]
    by_rule: list[FunnelRow]
    # day → (found, ticketed, done, realized) savings first reaching that stage that day
    by_day: dict[str, tuple[float, float, float, float]]
    computed_at: datetime
    seconds: float


def _money(value: Any) -> float:
    return 0.0 if value is None else float(value)


_STAGE_DAYS: Final = ("found_day", "ticketed_day", "done_day", "realized_day")


def _day(connection: Connection, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    if connection.dialect.name == "sqlite":
        # UtcDateTime is stored as 'YYYY-MM-DD HH:MM:SS…' in UTC on SQLite.
        return sa.func.substr(column, 1, 10)
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")


def _read_rollup(connection: Connection, *, batch: int = 100_000) -> pl.DataFrame:
    """The columns the overview aggregates, for every recommendation, in one scan.

    One pass and Polars for the groupings: on SQLite each GROUP BY is a scan of its own (and
    GROUP BY owner chose the owner index, then a table lookup per row: 24 s at 1M rows), so
    eight of them cost many times this one. Money comes as floats and days as text so that no
    per-row Decimal or datetime is built for a million rows.
    """
    money = sa.Float()
    query = sa.select(
        rec.currency,
        rec.status,
        rec.owner,
        rec.account_id,
        rec.rule_id,
        sa.cast(rec.monthly_savings, money).label("found"),
        sa.cast(rec.realized_monthly_savings, money).label("realized"),
        _day(connection, rec.first_seen).label("found_day"),
        _day(connection, rec.ticketed_at).label("ticketed_day"),
        _day(connection, rec.ticket_done_at).label("done_day"),
        _day(connection, rec.implemented_at).label("realized_day"),
    )
    schema = {
        "currency": pl.String,
        "status": pl.String,
        "owner": pl.String,
        "account": pl.String,
        "rule": pl.String,
        "found": pl.Float64,
        "realized": pl.Float64,
        **dict.fromkeys(_STAGE_DAYS, pl.String),
    }
    result = connection.execution_options(stream_results=True).execute(query)
    frames = []
    while rows := result.fetchmany(batch):
        frames.append(pl.DataFrame([tuple(row) for row in rows], schema=schema, orient="row"))
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def _funnels(frame: pl.DataFrame, key: str | None) -> list[FunnelRow]:
    ticketed = pl.col("ticketed_day").is_not_null()
    done = pl.col("done_day").is_not_null()
    aggregates = [
        pl.len().alias("n"),
        pl.col("found").sum().alias("found"),
        pl.col("found").filter(ticketed).sum().alias("ticketed"),
        ticketed.sum().alias("ticketed_count"),
        pl.col("found").filter(done).sum().alias("done"),
        done.sum().alias("done_count"),
        pl.col("realized").sum().alias("realized"),
        pl.col("realized").is_not_null().sum().alias("realized_count"),
    ]
    grouped = (
        frame.select(aggregates).with_columns(pl.lit("all").alias("key"))
        if key is None
        else frame.group_by(pl.col(key).alias("key")).agg(aggregates)
    )
    return [
        FunnelRow(
            key=row["key"],
            count=int(row["n"]),
            found=_money(row["found"]),
            ticketed=_money(row["ticketed"]),
            ticketed_count=int(row["ticketed_count"]),
            done=_money(row["done"]),
            done_count=int(row["done_count"]),
            realized=_money(row["realized"]),
            realized_count=int(row["realized_count"]),
        )
        for row in grouped.sort(["found", "key"], descending=[True, False]).iter_rows(named=True)
    ]


def load_overview(engine: Engine, *, top: int = 10) -> Overview:
    """Aggregate the recommendations for the overview, from one scan of the table."""
    started = time.perf_counter()
    with engine.connect() as connection:
        frame = _read_rollup(connection)
    per_currency = _funnels(frame, "currency")
    currency = per_currency[0].key if per_currency else None
    others = {row.key: row.found for row in per_currency[1:] if row.key}
    mine = frame.filter(
        pl.col("currency").is_null() if currency is None else pl.col("currency") == currency
    )
    total = _funnels(mine, None)[0] if per_currency else FunnelRow("all", 0, 0, 0, 0, 0, 0, 0, 0)
    by_status = {
        row["status"]: (int(row["n"]), _money(row["saved"]))
        for row in mine.group_by("status")
        .agg(pl.len().alias("n"), pl.col("found").sum().alias("saved"))
        .iter_rows(named=True)
    }
    days: dict[str, list[float]] = {}
    for index, (day, amount) in enumerate(
        zip(_STAGE_DAYS, ("found",) * 3 + ("realized",), strict=True)
    ):
        sums = (
            mine.filter(pl.col(day).is_not_null())
            .group_by(day)
            .agg(pl.col(amount).sum().alias("saved"))
        )
        for when, saved in sums.iter_rows():
            days.setdefault(str(when), [0.0, 0.0, 0.0, 0.0])[index] += _money(saved)
    return Overview(
        currency=currency,
        other_currencies=others,
        total=total,
        by_status=by_status,
        by_owner=_funnels(mine, "owner")[:top],
        by_account=_funnels(mine, "account")[:top],
        by_rule=_funnels(mine, "rule")[:top],
        by_day={day: (v[0], v[1], v[2], v[3]) for day, v in sorted(days.items())},
        computed_at=datetime.now(UTC),
        seconds=time.perf_counter() - started,
    )


class OverviewCache:
    """The last overview, served at once; recomputed in the background once older than
    ``ttl`` seconds (0: recomputed in the request, every time).

    The aggregates read every recommendation (seconds at a million rows on SQLite), so a
    request never waits for them once a first overview exists: it gets the previous one, marked
    with its age, while a single background thread computes the next.
    """

    def __init__(self, engine: Engine, ttl: float = 30.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: Overview | None = None
        self._at = 0.0
        self._refreshing: threading.Thread | None = None

    def get(self, *, fresh: bool = False) -> Overview:
        with self._lock:
            value, at = self._value, self._at
        if fresh or value is None or self.ttl <= 0:
            return self._compute()
        if time.monotonic() - at >= self.ttl:
            self._refresh_in_background()
        return value

    def warm(self) -> None:
        """Compute the first overview in the background (when the router is created)."""
        self._refresh_in_background()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background refresh in progress, if any, to end."""
        with self._lock:
            thread = self._refreshing
        if thread is not None:
            thread.join(timeout)

    def _compute(self) -> Overview:
        value = load_overview(self.engine)
        with self._lock:
            self._value, self._at = value, time.monotonic()
        return value

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing is not None and self._refreshing.is_alive():
                return
            self._refreshing = threading.Thread(
                target=self._quietly, name="dashboard-overview", daemon=True
            )
            self._refreshing.start()

    def _quietly(self) -> None:
        # A failed refresh keeps the previous overview; the next stale request tries again.
        with contextlib.suppress(Exception):
            self._compute()


# ---------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class ListFilters:
    """What the recommendations list selects; empty fields do not filter."""

    status: str = ""
    rule: str = ""
    account: str = ""
    owner: str = ""
    region: str = ""
    resource: str = ""
    sort: str = "savings"
    size: int = 50

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.status in RECOMMENDATION_STATUSES:
            clauses.append(rec.status == self.status)
        for column, value in (
            (rec.rule_id, self.rule),
            (rec.account_id, self.account),
            (rec.owner, self.owner),
            (rec.region, self.region),
        ):
            if value:
                clauses.append(column == value)
        if self.resource:
            # A prefix, so the unique index on resource ids is not needed: LIKE 'x%' on the
            # filtered rows; '%' and '_' typed by the user are matched literally.
            escaped = self.resource.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(rec.resource_id.like(escaped + "%", escape="\\"))
        return clauses

    def query_args(self) -> dict[str, str]:
        """The filters as URL query parameters (without defaults)."""
        args = {
            "status": self.status,
            "rule": self.rule,
            "account": self.account,
            "owner": self.owner,
            "region": self.region,
            "resource": self.resource,
        }
        if self.sort != "savings":
            args["sort"] = self.sort
        if self.size != 50:
            args["size"] = str(self.size)
        return {key: value for key, value in args.items() if value}


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, going back, before) this sort value and id."""

    value: Any
    id: int
    backward: bool = False

    def encode(self) -> str:
        value = str(self.value) if isinstance(self.value, Decimal) else self.value
        raw = json.dumps([value, self.id, self.backward], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor in ``text``, or None when it is not one (a hand-edited URL)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            value, ident, backward = json.loads(raw)
        except (ValueError, TypeError):
            return None
        if not isinstance(ident, int) or not isinstance(backward, bool):
            return None
        if value is not None and not isinstance(value, str | int | float):
            return None
        return cls(value, ident, backward)


@dataclass(frozen=True)
class ListPage:
    rows: list[Any]
    total: int
    next: Cursor | None
    previous: Cursor | None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _sort_key(sort: str) -> tuple[sa.ColumnElement[Any], bool]:
    name, descending = SORTS.get(sort, SORTS["savings"])
    return rec[name], descending


LIST_COLUMNS: Final = (
    rec.id,
    rec.rule_id,
    rec.resource_id,
    rec.resource_name,
    rec.account_id,
    rec.owner,
    rec.region,
    rec.kind,
    rec.title,
    rec.status,
    rec.monthly_savings,
    rec.currency,
    rec.first_seen,
    rec.last_seen,
    rec.ticketed_at,
    rec.realized_monthly_savings,
)


def _keyset(
    column: sa.ColumnElement[Any], descending: bool, cursor: Cursor | None
) -> tuple[list[sa.ColumnElement[bool]], list[Any], bool]:
    """WHERE clause and ORDER BY of the page after ``cursor``; True when read in reverse."""
    reverse = cursor is not None and cursor.backward
    # Going back reads the rows before the cursor in the opposite order, then flips them.
    down = descending != reverse
    order = [column.desc(), rec.id.desc()] if down else [column.asc(), rec.id.asc()]
    if cursor is None:
        return [], order, reverse
    value: Any = cursor.value
    if column is rec.monthly_savings and value is not None:
        value = Decimal(str(value))
    if column is rec.id:
        clause = rec.id < cursor.id if down else rec.id > cursor.id
    elif down:
        clause = sa.or_(column < value, sa.and_(column == value, rec.id < cursor.id))
    else:
        clause = sa.or_(column > value, sa.and_(column == value, rec.id > cursor.id))
    return [clause], order, reverse


def list_recommendations(
    engine: Engine, filters: ListFilters, cursor: Cursor | None, *, count: bool = True
) -> ListPage:
    """One page of the list, with cursors to the next and previous pages."""
    started = time.perf_counter()
    column, descending = _sort_key(filters.sort)
    where, order, reverse = _keyset(column, descending, cursor)
    query = (
        sa.select(*LIST_COLUMNS)
        .where(*filters.clauses(), *where)
        .order_by(*order)
        .limit(filters.size + 1)
    )
    with engine.connect() as connection:
        rows = list(connection.execute(query))
        total = (
            int(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(recommendations)
                    .where(*filters.clauses())
                ).scalar_one()
            )
            if count
            else -1
        )
    more = len(rows) > filters.size
    rows = rows[: filters.size]
    if reverse:
        rows.reverse()

    def at(row: Any, backward: bool) -> Cursor:
        value = row.id if column is rec.id else row._mapping[column.name]
        if isinstance(value, Decimal):
            value = str(value)
        return Cursor(value, int(row.id), backward)

    if not rows:
        return ListPage([], total, None, None, time.perf_counter() - started)
    # Forward: a next page exists when we read one row too many; a previous one when we came
    # from a cursor. Backward: the other way round.
    has_next = more if not reverse else True
    has_previous = (cursor is not None) if not reverse else more
    return ListPage(
        rows=rows,
        total=total,
        next=at(rows[-1], False) if has_next else None,
        previous=at(rows[0], True) if has_previous else None,
        seconds=time.perf_counter() - started,
    )


def iter_export(engine: Engine, filters: ListFilters, *, batch: int = 5_000) -> Iterator[Any]:
    """Every row the filters select, in the list's order, ``batch`` rows per query."""
    cursor: Cursor | None = None
    while True:
        page = list_recommendations(
            engine, ListFilters(**{**filters.__dict__, "size": batch}), cursor, count=False
        )
        yield from page.rows
        if page.next is None:
            return
        cursor = page.next


def distinct_values(engine: Engine, column: str, *, limit: int = 100) -> list[str]:
    """Values of an indexed filter column, for the filter's suggestions.

    A loose index scan (each value found by one index seek past the previous one) instead of
    GROUP BY, which would read all million index entries to find a dozen teams.
    """
    target = rec[column]
    inner = sa.select(sa.func.min(target)).where(target.is_not(None)).scalar_subquery()
    seed = sa.select(inner.label("value")).cte("distinct_values", recursive=True)
    following = sa.select(sa.func.min(target)).where(target > seed.c.value).scalar_subquery()
    values = seed.union_all(sa.select(following).where(seed.c.value.is_not(None)))
    query = sa.select(values.c.value).where(values.c.value.is_not(None)).limit(limit)
    with engine.connect() as connection:
        return [str(value) for value in connection.execute(query).scalars()]


# ---------------------------------------------------------------------------- detail


@dataclass(frozen=True)
class TicketInfo:
    key: str | None
    url: str | None
    project: str
    state: str
    status: str | None
    status_category: str | None
    resolution: str | None
    created_at: datetime | None
    last_synced_at: datetime | None


def recommendation_row(engine: Engine, recommendation_id: int) -> Any | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(recommendations).where(rec.id == recommendation_id)
        ).first()


def ticket_of(engine: Engine, recommendation_id: int, fingerprint: str) -> TicketInfo | None:
    """The recommendation's ticket: by the map table, else by its fingerprint."""
    t = tickets.c
    columns = (
        t.key,
        t.url,
        t.project,
        t.state,
        t.status,
        t.status_category,
        t.resolution,
        t.created_at,
        t.last_synced_at,
    )
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(tickets.name):
            return None
        row = connection.execute(
            sa.select(*columns)
            .select_from(
                recommendation_tickets.join(tickets, recommendation_tickets.c.ticket_id == t.id)
            )
            .where(recommendation_tickets.c.recommendation_id == recommendation_id)
        ).first()
        if row is None:
            row = connection.execute(
                sa.select(*columns).where(t.fingerprint == fingerprint)
            ).first()
    return None if row is None else TicketInfo(*row)


# ---------------------------------------------------------------------------- sync health


@dataclass(frozen=True)
class SyncHealth:
    """What the sync has stored about itself."""

    now: datetime
    cursors: list[tuple[str, datetime, timedelta, datetime]]
    tickets_by_state: dict[str, int]
    tickets_by_category: dict[str, int]
    pending_intents: list[Any]
    retried: int
    stale_tickets: int
    oldest_sync: datetime | None
    duplicates_closed: int
    errors: list[Any]
    has_tables: bool


def load_sync_health(engine: Engine, *, stale_after: timedelta = timedelta(days=1)) -> SyncHealth:
    now = datetime.now(UTC)
    t = tickets.c
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        if not inspector.has_table(tickets.name):
            return SyncHealth(now, [], {}, {}, [], 0, 0, None, 0, [], False)
        cursors = []
        for row in connection.execute(sa.select(sync_cursors).order_by(sync_cursors.c.source)):
            at = datetime.fromtimestamp(row.cursor_ms / 1000, UTC)
            cursors.append((row.source, at, now - at, row.updated_at))
        by_state = {
            str(state): int(n)
            for state, n in connection.execute(
                sa.select(t.state, sa.func.count()).group_by(t.state)
            )
        }
        by_category = {
            str(category or "unknown"): int(n)
            for category, n in connection.execute(
                sa.select(t.status_category, sa.func.count())
                .where(t.state == "created")
                .group_by(t.status_category)
            )
        }
        pending = list(
            connection.execute(
                sa.select(t.fingerprint, t.project, t.intent_at, t.attempts)
                .where(t.state == "creating")
                .order_by(t.intent_at)
                .limit(20)
            )
        )
        retried = int(
            connection.execute(
                sa.select(sa.func.count()).select_from(tickets).where(t.attempts > 1)
            ).scalar_one()
        )
        stale = int(
            connection.execute(
                sa.select(sa.func.count())
                .select_from(tickets)
                .where(
                    t.state == "created",
                    sa.or_(t.last_synced_at.is_(None), t.last_synced_at < now - stale_after),
                )
            ).scalar_one()
        )
        oldest = connection.execute(
            sa.select(sa.func.min(t.last_synced_at)).where(t.state == "created")
        ).scalar_one()
        duplicates = int(
            connection.execute(
                sa.select(sa.func.count())
                .select_from(tickets)
                .where(sa.func.lower(t.resolution) == "duplicate")
            ).scalar_one()
        )
        errors: list[Any] = []
        if inspector.has_table(durable_steps.name):
            s = durable_steps.c
            errors = list(
                connection.execute(
                    sa.select(
                        s.run_id,
                        durable_runs.c.workflow,
                        s.step,
                        s.item_key,
                        s.error,
                        s.finished_at,
                    )
                    .select_from(durable_steps.join(durable_runs, durable_runs.c.id == s.run_id))
                    .where(s.status == "failed")
                    .order_by(s.finished_at.desc())
                    .limit(10)
                )
            )
    if isinstance(oldest, str):  # an aggregate loses the column type on SQLite
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return SyncHealth(
        now=now,
        cursors=cursors,
        tickets_by_state=by_state,
        tickets_by_category=by_category,
        pending_intents=pending,
        retried=retried,
        stale_tickets=stale,
        oldest_sync=oldest,
        duplicates_closed=duplicates,
        errors=errors,
        has_tables=True,
    )


def runs_page(
    engine: Engine, *, status: str = "", before: str = "", size: int = 50
) -> tuple[list[Any], str | None]:
    """Durable runs, newest first, keyset-paged by (created_at, id)."""
    r = durable_runs.c
    query = sa.select(
        r.id, r.workflow, r.status, r.error, r.attempts, r.created_at, r.started_at, r.finished_at
    )
    if status:
        query = query.where(r.status == status)
    if before:
        anchor = sa.select(r.created_at).where(r.id == before).scalar_subquery()
        query = query.where(
            sa.or_(r.created_at < anchor, sa.and_(r.created_at == anchor, r.id < before))
        )
    query = query.order_by(r.created_at.desc(), r.id.desc()).limit(size + 1)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(durable_runs.name):
            return [], None
        rows = list(connection.execute(query))
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].id if more and rows else None)


@dataclass(frozen=True)
class RunCounts:
    """A run's plain steps by status, its map items, and the tickets those items carry."""

    steps: dict[str, int] = field(default_factory=dict)
    items: int = 0
    tickets: int | None = None
    """For runs whose map items are chunks of tickets (see ``units``); None for others."""


def run_counts(engine: Engine, runs: Sequence[tuple[str, str]]) -> dict[str, RunCounts]:
    """Per run (given as ``(id, workflow)``): what the runs list shows in its Steps column."""
    if not runs:
        return {}
    s = durable_steps.c
    ids = [run_id for run_id, _ in runs]
    steps: dict[str, dict[str, int]] = {run_id: {} for run_id in ids}
    items: dict[str, int] = {}
    tickets: dict[str, int] = {}
    with engine.connect() as connection:
        for run_id, status, n in connection.execute(
            sa.select(s.run_id, s.status, sa.func.count())
            .where(s.run_id.in_(ids), s.item_key == "")
            .group_by(s.run_id, s.status)
        ):
            steps[run_id][status] = int(n)
        for run_id, n in connection.execute(
            sa.select(s.run_id, sa.func.count())
            .where(s.run_id.in_(ids), s.item_key != "")
            .group_by(s.run_id)
        ):
            items[run_id] = int(n)
        # Only chunk keys are read, and only for runs of workflows that have chunks: a
        # weekly run of 10,000 tickets has 200 of them.
        chunked = {
            run_id: workflow
            for run_id, workflow in runs
            if any(workflow == w for w, _ in TICKET_CHUNK_STEPS)
        }
        chunk_steps = sorted({step for _, step in TICKET_CHUNK_STEPS})
        if chunked:
            for run_id, step, key in connection.execute(
                sa.select(s.run_id, s.step, s.item_key).where(
                    s.run_id.in_(list(chunked)), s.step.in_(chunk_steps), s.item_key != ""
                )
            ):
                size = tickets_in_item(chunked[run_id], step, key)
                if size is not None:
                    tickets[run_id] = tickets.get(run_id, 0) + size
    return {
        run_id: RunCounts(
            steps=steps[run_id],
            items=items.get(run_id, 0),
            tickets=tickets.get(run_id) if run_id in tickets else None,
        )
        for run_id in ids
    }
