"""The dashboard's pages: an ``APIRouter`` of server-rendered HTML over one database engine."""

from __future__ import annotations

__all__ = ["create_router"]

import contextlib
import csv
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.engine import Engine

from reclaim.dashboard import charts, queries
from reclaim.dashboard.queries import Cursor, ListFilters
from reclaim.dashboard.units import tickets_in_item
from reclaim.dashboard.why import explain_recommendation
from reclaim.database import create_engine
from reclaim.durable import DurableEngine, DurableError, RunStatus, StepStatus
from reclaim.errors import ReclaimError
from reclaim.recommend import RecommendationStore
from reclaim.store.tables.recommend import RECOMMENDATION_STATUSES

STATIC_PREFIX: Final = "/static/dashboard"
_STATIC_FILES: Final = {"dashboard.css": "text/css; charset=utf-8"}
_EXPORT_COLUMNS: Final = (
    "id",
    "rule_id",
    "resource_id",
    "resource_name",
    "account_id",
    "owner",
    "region",
    "kind",
    "title",
    "status",
    "monthly_savings",
    "currency",
    "first_seen",
    "last_seen",
    "ticketed_at",
    "realized_monthly_savings",
)
_RUN_STATUSES: Final = tuple(status.value for status in RunStatus)

# A query parameter: FastAPI resolves handler annotations by name, so this lives at module level.
Text = Annotated[str, Query(max_length=2048)]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reclaim.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money_filter
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    env.globals["static"] = STATIC_PREFIX
    env.globals["short"] = charts.money
    return env


_DASH: Final = "\u2013"  # an en dash: "no value" in a table cell


def _money_filter(value: Any, currency: str | None = None) -> str:
    if value is None:
        return _DASH
    text = f"{float(value):,.2f}"
    return f"{text} {currency}" if currency else text


def _when(value: datetime | None) -> str:
    return _DASH if value is None else value.strftime("%Y-%m-%d %H:%M")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


class _Dashboard:
    """The router's state: the engine, the overview cache, the templates, the run driver."""

    def __init__(self, engine: Engine, overview_ttl: float) -> None:
        self.engine = engine
        self.reader = reader_of(engine)
        self.overview = queries.OverviewCache(self.reader, overview_ttl)
        if overview_ttl > 0:
            self.overview.warm()
        self.env = _environment()
        self.durable = DurableEngine(engine)
        self._drivers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def page(self, template: str, active: str, **values: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(active=active, **values)
        return HTMLResponse(body)

    def drive(self, run_id: str) -> bool:
        """Drive a reopened run in a background thread of this process, when its workflow is
        known here; False leaves it pending for a ``reclaim worker``."""
        run = self.durable.get_run(run_id)
        try:
            self.durable.workflow(run.workflow).check_stored(run.id, run.version, run.definition)
        except ReclaimError:
            return False
        with self._lock:
            alive = self._drivers.get(run_id)
            if alive is not None and alive.is_alive():
                return True
            thread = threading.Thread(
                target=self._run, args=(run_id,), name=f"dashboard-run-{run_id}", daemon=True
            )
            self._drivers[run_id] = thread
        thread.start()
        return True

    def _run(self, run_id: str) -> None:
        # The outcome (succeeded, failed, cancelled) is recorded on the run itself, which the
        # run page shows; nobody waits on this thread.
        with contextlib.suppress(Exception):
            self.durable.run(run_id)


def reader_of(engine: Engine) -> Engine:
    """An engine for the pages' reads: on a SQLite file, a read-only one whose transactions
    are WAL snapshots (reclaim's engines begin every transaction with the write lock, and the
    overview's scan of a million rows would hold it for seconds); elsewhere ``engine``."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return engine
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return engine  # another engine would open another, empty, in-memory database
    return create_engine(url.render_as_string(hide_password=False), read_only=True)


def create_router(engine: Engine, *, overview_ttl: float = 30.0) -> APIRouter:
    """The dashboard's pages over ``engine``, to mount at ``/``; its CSS is served under
    ``/static/dashboard``. Authentication is the mounting application's job."""
    board = _Dashboard(engine, overview_ttl)
    # Every page reads through the reader; only Resume and Cancel write, through the engine.
    reader = board.reader
    router = APIRouter(include_in_schema=False)

    @router.get(STATIC_PREFIX + "/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC_FILES:
            raise HTTPException(404)
        data = resources.files("reclaim.dashboard").joinpath("static", name).read_bytes()
        return Response(
            data, media_type=_STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"}
        )

    @router.get("/", response_class=HTMLResponse)
    def overview(fresh: bool = False) -> HTMLResponse:
        data = board.overview.get(fresh=fresh)
        labels, weekly = charts.weekly(data.by_day)
        chart = charts.line_chart(
            labels,
            [
                charts.Series("found", "found", weekly[0]),
                charts.Series("ticketed", "ticketed", weekly[1]),
                charts.Series("done", "done", weekly[2]),
                charts.Series("realized", "realized", weekly[3]),
            ],
            title="monthly savings over time, cumulative",
        )
        return board.page(
            "overview.html",
            "overview",
            o=data,
            chart=chart,
            has_history=len(labels) > 0,
            statuses=RECOMMENDATION_STATUSES,
        )

    def _filters(
        status: str, rule: str, account: str, owner: str, region: str, resource: str,
        sort: str, size: int,
    ) -> ListFilters:  # fmt: skip
        return ListFilters(
            status=status if status in RECOMMENDATION_STATUSES else "",
            rule=rule.strip(),
            account=account.strip(),
            owner=owner.strip(),
            region=region.strip(),
            resource=resource.strip(),
            sort=sort if sort in queries.SORTS else "savings",
            size=size if size in queries.PAGE_SIZES else 50,
        )

    @router.get("/recommendations", response_class=HTMLResponse)
    def recommendations(
        status: Text = "",
        rule: Text = "",
        account: Text = "",
        owner: Text = "",
        region: Text = "",
        resource: Text = "",
        sort: Text = "savings",
        size: int = 50,
        page: Text = "",
    ) -> HTMLResponse:
        filters = _filters(status, rule, account, owner, region, resource, sort, size)
        cursor = Cursor.decode(page) if page else None
        result = queries.list_recommendations(reader, filters, cursor)
        args = filters.query_args()

        def link(**extra: str) -> str:
            merged = {**args, **extra}
            return "?" + urlencode({k: v for k, v in merged.items() if v})

        return board.page(
            "recommendations.html",
            "recommendations",
            f=filters,
            result=result,
            statuses=RECOMMENDATION_STATUSES,
            sorts=queries.SORTS,
            sizes=queries.PAGE_SIZES,
            rules=queries.distinct_values(reader, "rule_id"),
            owners=queries.distinct_values(reader, "owner"),
            accounts=queries.distinct_values(reader, "account_id"),
            next_url=link(page=result.next.encode()) if result.next else None,
            prev_url=link(page=result.previous.encode()) if result.previous else None,
            first_url=link() if cursor else None,
            sort_url=lambda name: link(sort=name),
            export_query=urlencode(args),
        )

    def _export_rows(filters: ListFilters) -> Iterator[dict[str, Any]]:
        for row in queries.iter_export(reader, filters):
            values = row._mapping
            yield {
                name: (
                    str(values[name])
                    if isinstance(values[name], Decimal)
                    else values[name].isoformat()
                    if isinstance(values[name], datetime)
                    else values[name]
                )
                for name in _EXPORT_COLUMNS
            }

    @router.get("/recommendations.csv")
    def export_csv(
        status: Text = "",
        rule: Text = "",
        account: Text = "",
        owner: Text = "",
        region: Text = "",
        resource: Text = "",
        sort: Text = "savings",
    ) -> StreamingResponse:
        filters = _filters(status, rule, account, owner, region, resource, sort, 50)

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=_EXPORT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for count, record in enumerate(_export_rows(filters), 1):
                writer.writerow(record)
                if count % 1000 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="recommendations.csv"'},
        )

    @router.get("/recommendations.json")
    def export_json(
        status: Text = "",
        rule: Text = "",
        account: Text = "",
        owner: Text = "",
        region: Text = "",
        resource: Text = "",
        sort: Text = "savings",
    ) -> StreamingResponse:
        filters = _filters(status, rule, account, owner, region, resource, sort, 50)

        def chunks() -> Iterator[str]:
            yield "["
            for count, record in enumerate(_export_rows(filters)):
                yield ("," if count else "") + "\n" + json.dumps(record)
            yield "\n]\n"

        return StreamingResponse(
            chunks(),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="recommendations.json"'},
        )

    @router.get("/recommendations/{recommendation_id}", response_class=HTMLResponse)
    def recommendation(recommendation_id: int) -> HTMLResponse:
        row = queries.recommendation_row(reader, recommendation_id)
        if row is None:
            raise HTTPException(404, f"no recommendation {recommendation_id}")
        history = RecommendationStore(reader).observations(recommendation_id)
        spark = charts.sparkline([float(obs.monthly_savings) for obs in history])
        return board.page(
            "recommendation.html",
            "recommendations",
            r=row,
            ticket=queries.ticket_of(reader, recommendation_id, row.fingerprint),
            history=history[-12:],
            runs_seen=len(history),
            spark=spark,
            why=explain_recommendation(reader, row),
            params=sorted((row.params or {}).items()),
        )

    @router.get("/runs", response_class=HTMLResponse)
    def runs(status: Text = "", before: Text = "") -> HTMLResponse:
        status = status if status in _RUN_STATUSES else ""
        rows, more = queries.runs_page(reader, status=status, before=before)
        counts = queries.run_counts(reader, [(row.id, row.workflow) for row in rows])
        older = "?" + urlencode({k: v for k, v in {"status": status, "before": more}.items() if v})
        return board.page(
            "runs.html",
            "runs",
            rows=rows,
            counts=counts,
            status=status,
            statuses=_RUN_STATUSES,
            older_url=older if more else None,
        )

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(run_id: str, msg: Text = "", items: Text = "") -> HTMLResponse:
        try:
            record = board.durable.get_run(run_id)
        except DurableError as exc:
            raise HTTPException(404, str(exc)) from exc
        checkpoints = board.durable.steps(run_id)
        now = datetime.now(UTC)
        try:
            order = [spec.name for spec in board.durable.workflow(record.workflow).order()]
        except ReclaimError:
            # Not importable here: the steps in the order they started.
            order = []
            for checkpoint in sorted(checkpoints, key=lambda c: c.started_at or now):
                if checkpoint.step not in order:
                    order.append(checkpoint.step)
        plain: dict[str, Any] = {}
        mapped: dict[str, list[Any]] = {}
        for checkpoint in checkpoints:
            if checkpoint.item_key == "":
                plain[checkpoint.step] = checkpoint
            else:
                mapped.setdefault(checkpoint.step, []).append(checkpoint)
        names = order + sorted((set(plain) | set(mapped)) - set(order))
        bars = []
        summaries: list[MapSummary] = []
        tickets: dict[tuple[str, str], int] = {}
        for name in names:
            if name in mapped:
                its = mapped[name]
                started = [c.started_at for c in its if c.started_at]
                finished = [c.finished_at for c in its if c.finished_at]
                by_status: dict[str, int] = {}
                tickets_by_status: dict[str, int] = {}
                for c in its:
                    by_status[c.status.value] = by_status.get(c.status.value, 0) + 1
                    size = tickets_in_item(record.workflow, name, c.item_key)
                    if size is not None:
                        tickets[(name, c.item_key)] = size
                        tickets_by_status[c.status.value] = (
                            tickets_by_status.get(c.status.value, 0) + size
                        )
                done = by_status.get("succeeded", 0)
                status = (
                    "failed"
                    if by_status.get("failed")
                    else "succeeded"
                    if done == len(its) and name in plain
                    else "running"
                )
                if name in plain:
                    status = plain[name].status.value
                unit = "chunks" if tickets_by_status else "items"
                note = f" · {done}/{len(its)} {unit}"
                if tickets_by_status:
                    total_tickets = sum(tickets_by_status.values())
                    note += f" · {tickets_by_status.get('succeeded', 0)}/{total_tickets} tickets"
                bars.append(
                    charts.TimelineBar(
                        name,
                        status,
                        min(started) if started else None,
                        max(finished) if finished and status != "running" else None,
                        note,
                    )
                )
                summaries.append(MapSummary(name, by_status, len(its), tickets_by_status or None))
            elif name in plain:
                c = plain[name]
                bars.append(charts.TimelineBar(name, c.status.value, c.started_at, c.finished_at))
            else:
                bars.append(charts.TimelineBar(name, "pending", None, None))
        item_filter = items if items in tuple(s.value for s in StepStatus) else ""
        item_rows = [
            c
            for step in mapped.values()
            for c in step
            if not item_filter or c.status.value == item_filter
        ]
        # Failed items first, then the most recent: what an operator looks for.
        item_rows.sort(
            key=lambda c: (c.status is not StepStatus.FAILED, -(c.finished_at or now).timestamp())
        )
        ended = record.finished_at or now
        return board.page(
            "run.html",
            "runs",
            run=record,
            msg=msg,
            timeline=charts.timeline(bars, now=now),
            steps=[plain.get(name) for name in names],
            names=names,
            summaries=summaries,
            items=item_rows[:200],
            item_tickets=tickets,
            item_total=len(item_rows),
            item_filter=item_filter,
            took=(ended - record.started_at).total_seconds() if record.started_at else None,
            can_resume=record.status in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DEAD),
            can_cancel=record.status in (RunStatus.PENDING, RunStatus.RUNNING),
        )

    @router.post("/runs/{run_id}/resume")
    def resume(run_id: str) -> RedirectResponse:
        try:
            board.durable.store.reopen(run_id)
            driven = board.drive(run_id)
        except ReclaimError as exc:
            return _back(run_id, f"Not resumed: {exc}")
        message = (
            "Resumed: the run continues from its last checkpoint."
            if driven
            else "Reopened: a reclaim worker that knows this workflow will continue it."
        )
        return _back(run_id, message)

    @router.post("/runs/{run_id}/cancel")
    def cancel(run_id: str) -> RedirectResponse:
        try:
            cancelled = board.durable.cancel(run_id)
        except DurableError as exc:
            return _back(run_id, f"Not cancelled: {exc}")
        return _back(
            run_id,
            "Cancelled: the run stops at its next step boundary."
            if cancelled
            else "The run had already finished.",
        )

    @router.get("/sync", response_class=HTMLResponse)
    def sync() -> HTMLResponse:
        return board.page("sync.html", "sync", h=queries.load_sync_health(reader))

    return router


@dataclass(frozen=True)
class MapSummary:
    """A map step's items by status; for chunks of tickets, the tickets by status too."""

    step: str
    by_status: dict[str, int]
    total: int
    tickets_by_status: dict[str, int] | None = None

    @property
    def tickets(self) -> int | None:
        return None if self.tickets_by_status is None else sum(self.tickets_by_status.values())


def _back(run_id: str, message: str) -> RedirectResponse:
    # Post/redirect/get: reloading the page never posts the action again.
    return RedirectResponse(f"/runs/{run_id}?" + urlencode({"msg": message}), status_code=303)
