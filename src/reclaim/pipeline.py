"""The weekly loop as one durable workflow.

::

    collect ─► sync_back ─► evaluate ─► write_back ─► select ─► distribute ─► report
    (files)    (Jira →      (rules,     (reopen,       (route,   (map step:    (found,
               statuses)    reconcile)  close, comment render,   one item per  ticketed, done,
                                        the tickets)   chunk)    chunk of 50)  realized)

Each box is a step of ``WEEKLY``, checkpointed by the durable engine in the same database as
the recommendations, so a run that crashed resumes at the first unfinished step, never collects
or records the same week twice, and never creates a ticket twice: ``distribute`` is a map step
over chunks of up to ``ticket_batch`` tickets (one Jira bulk create each), each chunk finished
by the exactly-once protocol of :meth:`reclaim.sync.Distributor.distribute_many`. On PostgreSQL
with ``distribute_items`` the chunks are queued so that every ``reclaim worker`` helps, and a
dead worker's chunks go to another.

The sync back runs *before* evaluate, not after distribute as the design's picture draws it:
whether a recommendation whose resource is gone is ``implemented`` (its ticket was done) or
merely ``resolved``, and whether one still there is ``reopened`` (its ticket was done but the
waste came back), depends on the ticket states, so they must be read before the run reconciles.
Write-back then tells the tickets what that reconciliation found (reopened with a comment when
the waste came back, closed when it went away by itself, the realized saving, a material change
of the figure) before new tickets go out, so a recommendation that came back gets its old
ticket reopened, never a second one.

The steps are thin: the work lives in ``reclaim.ingest``, ``reclaim.recommend`` and
``reclaim.sync``; this module only wires them and keeps the figures a person wants to see.
Without a Jira connection in the input the ticket steps do nothing and say so.
"""

from __future__ import annotations

__all__ = [
    "WEEKLY",
    "CollectSummary",
    "DistributeSummary",
    "LoopTotals",
    "RecommendSummary",
    "RuleTotal",
    "SyncSummary",
    "WeeklyInput",
    "WeeklyReport",
    "WeeklyRun",
    "WriteBackSummary",
    "add_progress_observer",
    "client_factory",
    "loop_totals",
    "resume_weekly",
    "run_weekly",
    "shared_client",
    "weekly_runs",
    "weekly_summary",
]

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from reclaim.config import JiraConfig
from reclaim.durable import (
    DurableEngine,
    RetryPolicy,
    RunRecord,
    StepContext,
    StepStatus,
    Workflow,
)
from reclaim.errors import ExecutionError
from reclaim.ingest import bundled_sample, collect_into, load_facts
from reclaim.recommend import (
    RecommendationStore,
    Status,
    fact_columns,
    load_pack,
    realized_by_owner_and_month,
    recommend,
)
from reclaim.store.tables.recommend import recommendations
from reclaim.store.tables.sync import recommendation_tickets, tickets
from reclaim.sync import (
    MAX_TICKET_BATCH,
    BatchResult,
    Poller,
    StatusMapping,
    TicketBatch,
    batch_items,
    distribute_batch,
    plan_items,
)
from reclaim.sync import (
    write_back as write_back_to_jira,
)
from reclaim.sync.distribution import TICKETABLE, batch_key, needs_ticket
from reclaim.tickets import JiraClient, JiraRequestError, connect
from reclaim.tickets.routing import load_routing
from reclaim.tickets.templates import load_templates


class WeeklyInput(BaseModel):
    """What one weekly run reads: files (or folders) per kind, and the savings rules."""

    billing: list[str] = Field(default_factory=list)
    inventory: list[str] = Field(default_factory=list)
    utilization: list[str] = Field(default_factory=list)
    rules: str | None = None
    """A savings rule file; ``None`` is the built-in pack."""
    sample: bool = False
    """Read the small sample bundled with reclaim instead of files."""
    jira: JiraConfig | None = None
    """Where tickets go. Holds the *name* of the token's variable or file, never the token:
    the input is stored with the run. ``None``: find and track savings, no tickets."""
    routing: str | None = None
    templates: str | None = None
    default_project: str | None = None
    snooze_days: int = 90
    wont_do_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Declined", "Duplicate"]
    )
    ticket_limit: int | None = None
    """At most this many new tickets in one run (``None``: every open recommendation)."""
    ticket_batch: int = Field(default=MAX_TICKET_BATCH, ge=1, le=MAX_TICKET_BATCH)
    """Tickets per map item of ``distribute`` (one Jira bulk create each); 1 is one ticket per
    item, as before batching."""
    poll_lag_seconds: float = 30.0
    """The sync back reads changes older than this, so Jira's lagging index cannot hide one."""


class CollectSummary(BaseModel):
    collection_id: int
    new: bool
    resources: int
    rows_read: int
    bad_rows: int


class RecommendSummary(BaseModel):
    run_id: str
    already_recorded: bool
    counts: dict[str, int]
    monthly_savings: Decimal


class RuleTotal(BaseModel):
    rule_id: str
    open: int
    monthly_savings: Decimal


class SyncSummary(BaseModel):
    enabled: bool
    issues_read: int = 0
    changed: int = 0
    events: dict[str, int] = Field(default_factory=dict)


class WriteBackSummary(BaseModel):
    enabled: bool
    reopened: int = 0
    closed: int = 0
    commented: int = 0
    savings_updated: int = 0
    recognised: int = 0
    """Actions found already done in Jira (a crash or a lost answer before they were recorded)."""
    busy: int = 0
    failed: dict[str, str] = Field(default_factory=dict)


class DistributeSummary(BaseModel):
    enabled: bool
    planned: int = 0
    created: int = 0
    refused: dict[str, str] = Field(default_factory=dict)
    """Fingerprint → Jira's reason, for the tickets Jira refused (the next run tries again)."""


class LoopTotals(BaseModel):
    """The story of the money: found → ticketed → done → realized (monthly figures)."""

    found: int = 0
    found_monthly: Decimal = Decimal("0.00")
    ticketed: int = 0
    ticketed_monthly: Decimal = Decimal("0.00")
    done: int = 0
    done_monthly: Decimal = Decimal("0.00")
    realized: int = 0
    realized_monthly: Decimal = Decimal("0.00")


class WeeklyReport(BaseModel):
    by_status: dict[str, int]
    open_monthly_savings: Decimal
    by_rule: list[RuleTotal]
    loop: LoopTotals = Field(default_factory=LoopTotals)


class WeeklyRun(BaseModel):
    run_id: str
    collect: CollectSummary
    sync: SyncSummary
    recommend: RecommendSummary
    write_back: WriteBackSummary = Field(default_factory=lambda: WriteBackSummary(enabled=False))
    distribute: DistributeSummary
    report: WeeklyReport


Observer = Callable[[str, int, int | None], None]
_observers: list[Observer] = []


def add_progress_observer(observer: Observer) -> Callable[[], None]:
    """Call ``observer(step, advanced, total)`` as the steps of this process make progress.

    ``total`` is known when a step starts (``advanced`` 0) and ``None`` after; the command
    line draws its progress bars from this. Returns a function that removes the observer.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _progress(step: str, advanced: int, total: int | None = None) -> None:
    for observer in list(_observers):
        observer(step, advanced, total)


_clients: dict[tuple[JiraConfig, str], JiraClient] = {}
_clients_lock = threading.Lock()


def shared_client(jira: JiraConfig) -> JiraClient:
    """One client per process and site: the map step's concurrent items share its pacer."""
    credentials = jira.credentials()
    key = (jira, credentials.authorization())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = connect(credentials, requests_per_second=jira.requests_per_second)
            _clients[key] = client
        return client


# The Jira client a run uses; tests and embedding applications may replace the factory.
client_factory: Callable[[JiraConfig], JiraClient] = shared_client


def _database(ctx: StepContext) -> Engine:
    # The recommendations live in the database that holds the run's checkpoints, so whichever
    # process drives or resumes the run (`reclaim run`, `reclaim runs resume`, a worker) has it.
    if ctx.database is None:
        raise ExecutionError(
            "the weekly loop's steps need the database the run is stored in",
            fix="drive it with reclaim's DurableEngine on an engine, not a bare Store",
        )
    return ctx.database


WEEKLY = Workflow("reclaim.weekly", version="3", input_type=WeeklyInput, result="report")

# A database that is briefly unreachable should not fail a week's run; bad input should, at once.
_TRANSIENT = RetryPolicy(attempts=3, backoff_base=1.0, retry_on=(sa.exc.OperationalError,))


@WEEKLY.step(retry=_TRANSIENT)
def collect(ctx: StepContext) -> CollectSummary:
    """Read billing, inventory and utilization into a stored facts collection."""
    spec = WeeklyInput.model_validate(ctx.input)
    _progress("collect", 0, None)
    billing, inventory, utilization = spec.billing, spec.inventory, spec.utilization
    if spec.sample:
        sample = bundled_sample()
        billing = [str(sample.billing)]
        inventory = [str(sample.inventory)]
        utilization = [str(sample.utilization)]
    if not (billing or inventory or utilization):
        raise ExecutionError(
            "the weekly run was given no files to collect",
            fix="pass --billing/--inventory/--utilization, or --sample for the bundled sample",
        )
    stored, _report = collect_into(
        _database(ctx), billing=billing, inventory=inventory, utilization=utilization
    )
    return CollectSummary(
        collection_id=stored.id,
        new=stored.new,
        resources=stored.resources,
        rows_read=stored.rows_read,
        bad_rows=stored.bad_rows,
    )


def _mapping(spec: WeeklyInput) -> StatusMapping:
    return StatusMapping(
        wont_do=frozenset(spec.wont_do_resolutions), snooze=timedelta(days=spec.snooze_days)
    )


@WEEKLY.step(depends_on=("collect",), retry=_TRANSIENT)
def sync_back(ctx: StepContext, collect: CollectSummary) -> SyncSummary:
    """Read what the teams did to their tickets since the last poll into the recommendations.

    Safe to run again after a crash: the cursor advances with each applied page, and a ticket
    version already applied is recognised and skipped.
    """
    spec = WeeklyInput.model_validate(ctx.input)
    if spec.jira is None:
        return SyncSummary(enabled=False)
    _progress("sync_back", 0, None)
    poller = Poller(
        client_factory(spec.jira),
        _database(ctx),
        lag_ms=int(spec.poll_lag_seconds * 1000),
        mapping=_mapping(spec),
    )
    result = poller.poll()
    _progress("sync_back", result.seen, None)
    return SyncSummary(
        enabled=True, issues_read=result.seen, changed=result.applied, events=result.events
    )


@WEEKLY.step(depends_on=("collect", "sync_back"), retry=_TRANSIENT)
def evaluate(ctx: StepContext, collect: CollectSummary, sync_back: SyncSummary) -> RecommendSummary:
    """Run the savings rules over the facts and reconcile the matches with stored ones."""
    spec = WeeklyInput.model_validate(ctx.input)
    engine = _database(ctx)
    _progress("evaluate", 0, None)
    # Keyed on the step's idempotency key: if this step is re-run after a crash that followed
    # the commit, recommend() finds its own run already recorded and changes nothing. The
    # facts are not kept in a variable here: recommend() lets go of the columns it no longer
    # needs once the rules have run, which frees them only if nobody else holds the frame.
    pack = load_pack(spec.rules)
    result = recommend(
        engine,
        load_facts(engine, collect.collection_id, columns=fact_columns(pack)),
        pack,
        run_id=ctx.idempotency_key,
        now=ctx.now(),
    )
    return RecommendSummary(
        run_id=result.run.id,
        already_recorded=result.already_recorded,
        counts=result.counts,
        monthly_savings=result.run.monthly_savings,
    )


@WEEKLY.step(depends_on=("evaluate",), retry=_TRANSIENT)
def write_back(ctx: StepContext, evaluate: RecommendSummary) -> WriteBackSummary:
    """Tell the tickets what this run found: reopen with a comment what came back, close what
    went away by itself, comment realized savings and material changes of the figure.

    Safe to run again after a crash: each action is recorded as pending before Jira is called
    and carries a marker comment, so a repeated one is recognised rather than repeated.
    """
    spec = WeeklyInput.model_validate(ctx.input)
    if spec.jira is None:
        return WriteBackSummary(enabled=False)
    _progress("write_back", 0, None)
    done = write_back_to_jira(_database(ctx), client_factory(spec.jira))
    _progress("write_back", done.actions, None)
    return WriteBackSummary(
        enabled=True,
        reopened=done.reopened,
        closed=done.closed,
        commented=done.commented,
        savings_updated=done.savings_updated,
        recognised=done.recognised,
        busy=done.busy,
        failed=done.failed,
    )


@WEEKLY.step(depends_on=("evaluate", "write_back"), retry=_TRANSIENT)
def select(
    ctx: StepContext, evaluate: RecommendSummary, write_back: WriteBackSummary
) -> list[TicketBatch]:
    """Route and render every recommendation that needs a ticket, in chunks (checkpointed, so
    a resumed run distributes exactly these chunks): open ones, and reopened ones that never
    had one; not those another rule on the same resource supersedes."""
    spec = WeeklyInput.model_validate(ctx.input)
    if spec.jira is None:
        return []
    router = load_routing(spec.routing, default_project=spec.default_project)
    templates = load_templates(spec.templates)
    engine = _database(ctx)
    with engine.connect() as connection:
        ticketed = set(
            connection.execute(
                sa.select(tickets.c.fingerprint).where(tickets.c.state == "created")
            ).scalars()
        )
    # Open with a created ticket happens only after a crash between recording the key and
    # marking the recommendation, so a limit plus that many is always enough rows.
    limit = None if spec.ticket_limit is None else spec.ticket_limit + len(ticketed)
    records = [
        record
        for record in RecommendationStore(engine).find(statuses=list(TICKETABLE), limit=limit)
        if record.fingerprint not in ticketed and needs_ticket(record)
    ][: spec.ticket_limit]
    items = plan_items(records, router, templates)
    _progress("distribute", 0, len(items))
    return batch_items(items, spec.ticket_batch)


@WEEKLY.map_step(
    over="select",
    key=batch_key,
    concurrency=4,
    retry=RetryPolicy(
        attempts=5, backoff_base=1.0, backoff_max=30.0, permanent=(JiraRequestError,)
    ),
)
def distribute(ctx: StepContext, batch: TicketBatch) -> BatchResult:
    """One chunk of tickets, exactly once: intents, one bulk create with the fingerprint
    labels, the keys, the recommendations marked ticketed. Refusals are listed, not raised."""
    spec = WeeklyInput.model_validate(ctx.input)
    if spec.jira is None:  # pragma: no cover - select plans no item without Jira
        raise ExecutionError("a ticket item without a Jira connection in the run's input")
    result = distribute_batch(
        _database(ctx), client_factory(spec.jira), batch.items, grace=spec.jira.grace_seconds
    )
    _progress("distribute", len(batch.items))
    return result


@WEEKLY.step(depends_on=("distribute",), retry=_TRANSIENT)
def report(ctx: StepContext, distribute: dict[str, BatchResult]) -> WeeklyReport:
    """Totals a person reads: recommendations per status, open savings per rule, and the loop
    from found to realized."""
    rec = recommendations.c
    engine = _database(ctx)
    with engine.connect() as connection:
        by_status = {
            status: int(count)
            for status, count in connection.execute(
                sa.select(rec.status, sa.func.count()).group_by(rec.status)
            )
        }
        open_statuses = ("open", "reopened")
        rows = connection.execute(
            sa.select(
                rec.rule_id, sa.func.count(), sa.func.coalesce(sa.func.sum(rec.monthly_savings), 0)
            )
            .where(rec.status.in_(open_statuses))
            .group_by(rec.rule_id)
            .order_by(sa.func.sum(rec.monthly_savings).desc())
        ).all()
    by_rule = [
        RuleTotal(rule_id=rule_id, open=int(count), monthly_savings=_money(total))
        for rule_id, count, total in rows
    ]
    return WeeklyReport(
        by_status=by_status,
        open_monthly_savings=sum((rule.monthly_savings for rule in by_rule), Decimal("0.00")),
        by_rule=by_rule,
        loop=loop_totals(engine),
    )


def loop_totals(engine: Engine) -> LoopTotals:
    """Found (every recommendation), ticketed (has a ticket), done (its ticket was closed as
    done), realized (implemented, with savings measured on a later bill)."""
    rec = recommendations.c
    link = recommendation_tickets.c
    money = sa.func.coalesce(sa.func.sum(rec.monthly_savings), 0)
    with engine.connect() as connection:
        found, found_monthly = connection.execute(sa.select(sa.func.count(), money)).one()
        with_ticket = sa.select(link.recommendation_id).join(
            tickets, tickets.c.id == link.ticket_id
        )
        ticketed, ticketed_monthly = connection.execute(
            sa.select(sa.func.count(), money).where(rec.id.in_(with_ticket))
        ).one()
        done_tickets = with_ticket.where(tickets.c.status_category == "done")
        done, done_monthly = connection.execute(
            sa.select(sa.func.count(), money).where(
                sa.or_(
                    rec.status == Status.IMPLEMENTED.value,
                    sa.and_(rec.id.in_(done_tickets), rec.status != Status.DISMISSED.value),
                )
            )
        ).one()
    realized_rows = realized_by_owner_and_month(engine)
    return LoopTotals(
        found=int(found),
        found_monthly=_money(found_monthly),
        ticketed=int(ticketed),
        ticketed_monthly=_money(ticketed_monthly),
        done=int(done),
        done_monthly=_money(done_monthly),
        realized=sum(row.implemented for row in realized_rows),
        realized_monthly=_money(sum((row.realized_monthly_savings for row in realized_rows), 0)),
    )


def _money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def run_weekly(engine: Engine, spec: WeeklyInput, *, distribute_items: bool = False) -> WeeklyRun:
    """Start one weekly run and drive it to the end; the database must be migrated.

    With ``distribute_items`` (PostgreSQL) the ticket items are queued so that running
    ``reclaim worker`` processes share them.
    """
    durable = _durable(engine, distribute_items)
    run_id = durable.start(WEEKLY, spec.model_dump(mode="json"))
    durable.run(run_id)
    return weekly_summary(durable, run_id)


def resume_weekly(engine: Engine, run_id: str, *, distribute_items: bool = False) -> WeeklyRun:
    """Continue a weekly run that stopped, from its first unfinished step."""
    durable = _durable(engine, distribute_items)
    durable.resume(run_id)
    return weekly_summary(durable, run_id)


def _durable(engine: Engine, distribute_items: bool) -> DurableEngine:
    # On SQLite one process drives the run, and a crashed owner is recognised by its dead pid
    # at once; a short lease there only hurts: a step's long write transaction (evaluate
    # records 100,000 recommendations in one) keeps the heartbeat's commit waiting, and on a
    # loaded machine past the lease the run stops with LeaseLost.
    if engine.dialect.name == "sqlite":
        return DurableEngine(
            engine,
            workflows=[WEEKLY],
            distribute_items=distribute_items,
            lease_seconds=_SQLITE_LEASE,
        )
    return DurableEngine(engine, workflows=[WEEKLY], distribute_items=distribute_items)


_SQLITE_LEASE = 600.0


def weekly_runs(engine: Engine, limit: int = 20) -> list[RunRecord]:
    return DurableEngine(engine, workflows=[WEEKLY]).list_runs(workflow=WEEKLY.name, limit=limit)


def weekly_summary(durable: DurableEngine, run_id: str) -> WeeklyRun:
    """The figures of a finished weekly run, from its checkpoints."""
    records = durable.steps(run_id)
    outputs = {step.step: step.output for step in records if not step.item_key}
    planned = sum(
        len(TicketBatch.model_validate(batch).items) for batch in json_list(outputs.get("select"))
    )
    chunks = [
        BatchResult.model_validate_json(step.output or "{}")
        for step in records
        if step.step == "distribute" and step.item_key and step.status is StepStatus.SUCCEEDED
    ]
    created = sum(len(chunk.keys) for chunk in chunks)
    refused = {fp: reason for chunk in chunks for fp, reason in chunk.refused.items()}
    spec = WeeklyInput.model_validate_json(durable.get_run(run_id).input)
    return WeeklyRun(
        run_id=run_id,
        collect=CollectSummary.model_validate_json(outputs["collect"] or "null"),
        sync=SyncSummary.model_validate_json(outputs["sync_back"] or "null"),
        recommend=RecommendSummary.model_validate_json(outputs["evaluate"] or "null"),
        write_back=WriteBackSummary.model_validate_json(outputs["write_back"] or "null"),
        distribute=DistributeSummary(
            enabled=spec.jira is not None, planned=planned, created=created, refused=refused
        ),
        report=WeeklyReport.model_validate_json(outputs["report"] or "null"),
    )


def json_list(text: str | None) -> list[object]:
    value = json.loads(text) if text else []
    return value if isinstance(value, list) else []
