"""The weekly loop as one durable workflow: collect → recommend → report.

Each box of the loop is a step of ``WEEKLY``, checkpointed by the durable engine in the same
database as the recommendations, so a run that crashed resumes at the first unfinished step and
never collects or records the same week twice. The steps are thin: the work lives in
``reclaim.ingest`` and ``reclaim.recommend``; this module only wires them and keeps the
figures a person wants to see. Distribution to Jira and the sync back join the loop as further
steps when they exist.
"""

from __future__ import annotations

__all__ = [
    "WEEKLY",
    "CollectSummary",
    "RecommendSummary",
    "RuleTotal",
    "WeeklyInput",
    "WeeklyReport",
    "WeeklyRun",
    "resume_weekly",
    "run_weekly",
    "weekly_runs",
]

from decimal import Decimal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from reclaim.durable import DurableEngine, RetryPolicy, RunRecord, StepContext, Workflow
from reclaim.errors import ExecutionError
from reclaim.ingest import bundled_sample, collect_into, load_facts
from reclaim.recommend import load_pack, recommend
from reclaim.store.tables.recommend import recommendations


class WeeklyInput(BaseModel):
    """What one weekly run reads: files (or folders) per kind, and the savings rules."""

    billing: list[str] = Field(default_factory=list)
    inventory: list[str] = Field(default_factory=list)
    utilization: list[str] = Field(default_factory=list)
    rules: str | None = None
    """A savings rule file; ``None`` is the built-in pack."""
    sample: bool = False
    """Read the small sample bundled with reclaim instead of files."""


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


class WeeklyReport(BaseModel):
    by_status: dict[str, int]
    open_monthly_savings: Decimal
    by_rule: list[RuleTotal]


class WeeklyRun(BaseModel):
    run_id: str
    collect: CollectSummary
    recommend: RecommendSummary
    report: WeeklyReport


def _database(ctx: StepContext) -> Engine:
    # The recommendations live in the database that holds the run's checkpoints, so whichever
    # process drives or resumes the run (`reclaim run`, `reclaim runs resume`, a worker) has it.
    if ctx.database is None:
        raise ExecutionError(
            "the weekly loop's steps need the database the run is stored in",
            fix="drive it with reclaim's DurableEngine on an engine, not a bare Store",
        )
    return ctx.database


WEEKLY = Workflow("reclaim.weekly", version="1", input_type=WeeklyInput, result="report")

# A database that is briefly unreachable should not fail a week's run; bad input should, at once.
_TRANSIENT = RetryPolicy(attempts=3, backoff_base=1.0, retry_on=(sa.exc.OperationalError,))


@WEEKLY.step(retry=_TRANSIENT)
def collect(ctx: StepContext) -> CollectSummary:
    """Read billing, inventory and utilization into a stored facts collection."""
    spec = WeeklyInput.model_validate(ctx.input)
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


@WEEKLY.step(depends_on=("collect",), retry=_TRANSIENT)
def evaluate(ctx: StepContext, collect: CollectSummary) -> RecommendSummary:
    """Run the savings rules over the facts and reconcile the matches with stored ones."""
    spec = WeeklyInput.model_validate(ctx.input)
    engine = _database(ctx)
    facts = load_facts(engine, collect.collection_id)
    # Keyed on the step's idempotency key: if this step is re-run after a crash that followed
    # the commit, recommend() finds its own run already recorded and changes nothing.
    result = recommend(
        engine, facts, load_pack(spec.rules), run_id=ctx.idempotency_key, now=ctx.now()
    )
    return RecommendSummary(
        run_id=result.run.id,
        already_recorded=result.already_recorded,
        counts=result.counts,
        monthly_savings=result.run.monthly_savings,
    )


@WEEKLY.step(depends_on=("evaluate",))
def report(ctx: StepContext, evaluate: RecommendSummary) -> WeeklyReport:
    """Totals a person reads: recommendations per status, open savings per rule."""
    rec = recommendations.c
    with _database(ctx).connect() as connection:
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
    )


def _money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def run_weekly(engine: Engine, spec: WeeklyInput) -> WeeklyRun:
    """Start one weekly run and drive it to the end; the database must be migrated."""
    durable = DurableEngine(engine, workflows=[WEEKLY])
    run_id = durable.start(WEEKLY, spec.model_dump())
    durable.run(run_id)
    return _summary(durable, run_id)


def resume_weekly(engine: Engine, run_id: str) -> WeeklyRun:
    """Continue a weekly run that stopped, from its first unfinished step."""
    durable = DurableEngine(engine, workflows=[WEEKLY])
    durable.resume(run_id)
    return _summary(durable, run_id)


def weekly_runs(engine: Engine, limit: int = 20) -> list[RunRecord]:
    return DurableEngine(engine, workflows=[WEEKLY]).list_runs(workflow=WEEKLY.name, limit=limit)


def _summary(durable: DurableEngine, run_id: str) -> WeeklyRun:
    outputs = {step.step: step.output for step in durable.steps(run_id) if not step.item_key}
    return WeeklyRun(
        run_id=run_id,
        collect=CollectSummary.model_validate_json(outputs["collect"] or "null"),
        recommend=RecommendSummary.model_validate_json(outputs["evaluate"] or "null"),
        report=WeeklyReport.model_validate_json(outputs["report"] or "null"),
    )
