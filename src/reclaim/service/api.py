"""The JSON API under ``/api/v1``: recommendations, totals, runs, tickets, sync health.

Every route needs a bearer token (see :mod:`reclaim.service.auth`). Handlers are plain ``def``:
FastAPI runs them in its thread pool, which is what blocking SQLAlchemy calls need.
"""

from __future__ import annotations

__all__ = ["router"]

from collections import Counter
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from reclaim.dashboard import tickets_in_item
from reclaim.durable import DurableEngine, RunBusy, RunNotFound, RunStatus
from reclaim.recommend import Filters, RecommendationStore, Status, totals
from reclaim.service.auth import require_token
from reclaim.service.models import (
    ExplanationOut,
    ItemSummary,
    ObservationOut,
    RecommendationDetail,
    RecommendationOut,
    RecommendationPage,
    RunDetail,
    RunOut,
    StepOut,
    SyncHealthOut,
    TicketOut,
    TicketPage,
    TotalOut,
    Totals,
)
from reclaim.service.queries import (
    SORTS,
    CursorError,
    RecommendationQuery,
    explain_recommendation,
    parse_statuses,
    recommendation_page,
    sync_health,
    ticket_for,
    ticket_page,
)
from reclaim.service.state import ServiceState, service_state

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

State = Annotated[ServiceState, Depends(service_state)]
StatusQuery = Annotated[
    list[str] | None,
    Query(description="Only these statuses (repeat it, or separate with commas)."),
]
TOTAL_BY = {
    "team": "owner",
    "owner": "owner",
    "account": "account",
    "rule": "rule",
    "status": "status",
    "region": "region",
}


def _bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=message)


def _statuses(values: list[str] | None) -> tuple[Status, ...]:
    try:
        return parse_statuses(values or [])
    except ValueError as exc:
        raise _bad_request(str(exc)) from exc


@router.get("/recommendations", response_model=RecommendationPage, tags=["recommendations"])
def list_recommendations(
    state: State,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    rule: str | None = None,
    account: str | None = None,
    team: Annotated[str | None, Query(description="The owning team (`owner`).")] = None,
    region: str | None = None,
    kind: str | None = None,
    min_savings: Annotated[Decimal | None, Query(ge=0)] = None,
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTS)}.")] = "savings",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Annotated[int, Query(ge=1)] = 50,
    cursor: str | None = None,
) -> RecommendationPage:
    """Recommendations, biggest monthly saving first by default; page with ``next_cursor``."""
    if limit > state.settings.page_limit:
        raise _bad_request(f"limit is at most {state.settings.page_limit}")
    query = RecommendationQuery(
        statuses=_statuses(status_),
        rule_id=rule,
        account_id=account,
        owner=team,
        region=region,
        kind=kind,
        min_savings=min_savings,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        cursor=cursor,
    )
    try:
        page = recommendation_page(state.engine, query)
    except CursorError as exc:
        raise _bad_request(str(exc)) from exc
    return RecommendationPage(
        items=[RecommendationOut.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/recommendations/{recommendation_id}",
    response_model=RecommendationDetail,
    tags=["recommendations"],
)
def get_recommendation(
    state: State,
    recommendation_id: int,
    explain: Annotated[
        bool, Query(description="Explain why the rule matched, from the latest facts.")
    ] = True,
) -> RecommendationDetail:
    """One recommendation with its history, its ticket and why its rule matched."""
    store = RecommendationStore(state.engine)
    record = store.get(recommendation_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recommendation {recommendation_id}")
    ticket = ticket_for(state.engine, record.id)
    explanation: ExplanationOut | None = None
    missing: str | None = "not requested"
    if explain:
        detail, missing = explain_recommendation(state.engine, record, state.settings.rules)
        if detail is not None:
            explanation = ExplanationOut(text=str(detail.pop("text")), detail=detail)
    return RecommendationDetail(
        recommendation=RecommendationOut.model_validate(record),
        observations=[ObservationOut.model_validate(o) for o in store.observations(record.id)],
        ticket=None if ticket is None else TicketOut.model_validate(ticket),
        explanation=explanation,
        explanation_missing=missing,
    )


@router.get("/totals", response_model=Totals, tags=["recommendations"])
def get_totals(
    state: State,
    by: Annotated[str, Query(description=f"One of {', '.join(TOTAL_BY)}.")] = "team",
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    rule: str | None = None,
    account: str | None = None,
    team: str | None = None,
    region: str | None = None,
) -> Totals:
    """Count and monthly savings per team, account, rule, status or region, per currency."""
    if by not in TOTAL_BY:
        raise _bad_request(f"cannot total by {by!r}; use one of {', '.join(TOTAL_BY)}")
    filters = Filters(
        statuses=_statuses(status_),
        rule_id=rule,
        account_id=account,
        owner=team,
        region=region,
    )
    groups = totals(state.engine, TOTAL_BY[by], filters)
    return Totals(by=by, groups=[TotalOut.model_validate(group) for group in groups])


# --------------------------------------------------------------------------------- runs


def _durable(state: ServiceState) -> DurableEngine:
    return state.durable


@router.get("/runs", response_model=list[RunOut], tags=["runs"])
def list_runs(
    state: State,
    workflow: str | None = None,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RunOut]:
    """Durable runs, newest first."""
    try:
        statuses = [RunStatus(s) for value in status_ or [] for s in value.split(",") if s]
    except ValueError as exc:
        raise _bad_request(f"{exc}; use one of {', '.join(s.value for s in RunStatus)}") from exc
    runs = _durable(state).list_runs(workflow=workflow, statuses=statuses or None, limit=limit)
    return [RunOut.model_validate(run) for run in runs]


@router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"])
def get_run(
    state: State,
    run_id: str,
    items_limit: Annotated[int, Query(ge=0, le=10_000)] = 500,
) -> RunDetail:
    """A run with its steps (a timeline) and its map items."""
    durable = _durable(state)
    try:
        run = durable.get_run(run_id)
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    records = durable.steps(run_id)
    plain = [record for record in records if not record.item_key]
    items = [record for record in records if record.item_key]
    counts: dict[str, Counter[str]] = {}
    tickets: dict[str, Counter[str]] = {}
    for item in items:
        counts.setdefault(item.step, Counter())[item.status.value] += 1
        size = tickets_in_item(run.workflow, item.step, item.item_key)
        if size is not None:
            tickets.setdefault(item.step, Counter())[item.status.value] += size
    return RunDetail(
        run=RunOut.model_validate(run),
        steps=[StepOut.model_validate(step) for step in plain],
        items=[StepOut.model_validate(item) for item in items[:items_limit]],
        item_summary=[
            ItemSummary(
                step=step,
                by_status=dict(sorted(counter.items())),
                unit="ticket chunk" if step in tickets else "item",
                tickets_by_status=dict(sorted(tickets[step].items())) if step in tickets else None,
            )
            for step, counter in counts.items()
        ],
    )


@router.post(
    "/runs/{run_id}/resume",
    response_model=RunOut,
    status_code=status.HTTP_202_ACCEPTED,
    tags=["runs"],
)
def resume_run(state: State, run_id: str) -> RunOut:
    """Make a failed, cancelled or dead run pending again; a worker continues it from its
    last checkpoint. A pending or running run is returned as it is."""
    try:
        run = _durable(state).store.reopen(run_id)
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except RunBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return RunOut.model_validate(run)


@router.post("/runs/{run_id}/cancel", response_model=RunOut, tags=["runs"])
def cancel_run(state: State, run_id: str) -> RunOut:
    """Cancel a pending or running run (a running one stops at its next step boundary)."""
    durable = _durable(state)
    try:
        run = durable.get_run(run_id)
    except RunNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    if not durable.cancel(run_id):
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"run {run_id} is {run.status.value}; it cannot be cancelled"
        )
    return RunOut.model_validate(durable.get_run(run_id))


# ------------------------------------------------------------------------------ tickets


@router.get("/tickets", response_model=TicketPage, tags=["tickets"])
def list_tickets(
    state: State,
    project: str | None = None,
    status_category: str | None = None,
    ticket_state: Annotated[str | None, Query(alias="state")] = None,
    after: int | None = None,
    limit: Annotated[int, Query(ge=1)] = 50,
) -> TicketPage:
    """Tickets by id; page with ``next_after``."""
    if limit > state.settings.page_limit:
        raise _bad_request(f"limit is at most {state.settings.page_limit}")
    rows, next_after = ticket_page(
        state.engine,
        project=project,
        status_category=status_category,
        state=ticket_state,
        after_id=after,
        limit=limit,
    )
    return TicketPage(items=[TicketOut.model_validate(row) for row in rows], next_after=next_after)


@router.get("/sync/health", response_model=SyncHealthOut, tags=["tickets"])
def get_sync_health(state: State) -> SyncHealthOut:
    """How far each inbound poll cursor lags, and where the tickets stand."""
    return SyncHealthOut.model_validate(sync_health(state.engine))
