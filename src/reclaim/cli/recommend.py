"""``reclaim recommend`` (one run) and ``reclaim recommendations`` (list, show, dismiss, runs)."""

from __future__ import annotations

__all__ = ["recommend_command", "recommendations_app"]

import csv
import itertools
import json
import sys
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import polars as pl
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

from reclaim.cli.context import console, state
from reclaim.errors import ConfigError, SourceLocation
from reclaim.ingest import conform_facts
from reclaim.ingest.collector import collect_facts
from reclaim.recommend import (
    Event,
    Filters,
    RecommendationRecord,
    RecommendationStore,
    RunResult,
    Status,
    fact_columns,
    iter_records,
    load_pack,
    realized_by_owner_and_month,
    recommend,
    totals,
)
from reclaim.rules import RuleFileError, RuleSet

recommendations_app = typer.Typer(
    help="List, inspect and dismiss the stored recommendations.", no_args_is_help=True
)

RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="A savings rule file to use instead of the built-in pack.",
        show_default=False,
    ),
]
FactsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--facts",
        help="A facts table (Parquet, CSV or JSON lines; one row per resource) to use instead "
        "of the newest collection (repeatable).",
        show_default=False,
    ),
]


def _load_rules(path: Path | None) -> RuleSet:
    try:
        return load_pack(path)
    except RuleFileError as exc:
        # Every error of the file, not just the first, is worth seeing.
        for error in exc.errors[1:]:
            console.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise


def _read_facts_file(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = pl.read_ndjson(path)
        else:
            raise ConfigError(
                f"unknown facts file type {suffix!r}",
                location=SourceLocation(str(path)),
                fix="use .parquet, .csv or .jsonl",
            )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(
            f"cannot read the facts: {exc}",
            location=SourceLocation(str(path)),
            fix="give a Parquet, CSV or JSON-lines facts table",
        ) from exc
    if "resource_id" not in frame.columns:
        raise ConfigError(
            "the facts table has no resource_id column",
            location=SourceLocation(str(path)),
            fix="one row per resource, with at least resource_id (see docs/recommendations.md)",
        )
    return frame


def _facts(
    ctx: typer.Context,
    facts: list[Path] | None,
    billing: list[Path] | None = None,
    inventory: list[Path] | None = None,
    utilization: list[Path] | None = None,
    collection: int | None = None,
    columns: AbstractSet[str] | None = None,
) -> pl.DataFrame:
    if facts:
        frames = [_read_facts_file(path) for path in facts]
        combined = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return conform_facts(combined).collect()
    if billing or inventory or utilization:
        with console.status("collecting facts from files…"):
            return collect_facts(billing or (), inventory or (), utilization or ()).facts
    from reclaim.ingest.ledger import load_facts

    return load_facts(state(ctx).engine(), collection, columns=columns)


def recommend_command(
    ctx: typer.Context,
    rules: RulesOption = None,
    facts: FactsOption = None,
    billing: Annotated[
        list[Path] | None,
        typer.Option("--billing", help="FOCUS billing files or folders to read first."),
    ] = None,
    inventory: Annotated[
        list[Path] | None,
        typer.Option("--inventory", help="Inventory files to read first."),
    ] = None,
    utilization: Annotated[
        list[Path] | None,
        typer.Option("--utilization", help="Utilization files to read first."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="Id of this run; a run id already recorded changes nothing."),
    ] = None,
    collection: Annotated[
        int | None,
        typer.Option(
            "--collection",
            help="Stored fact collection to evaluate (see `reclaim collect list`); default: "
            "the one `reclaim collect` reported last.",
        ),
    ] = None,
) -> None:
    """Evaluate the savings rules over the facts and store the recommendations.

    Facts come from --facts, else from --billing/--inventory/--utilization files, else from
    --collection, else the collection `reclaim collect` reported last. A recommendation seen
    again updates its row (last seen, figures); one that disappeared is resolved (or
    implemented, if its ticket was done).
    """
    ruleset = _load_rules(rules)
    # From a stored collection, only the fact columns the run reads, as the weekly job does.
    table = _facts(
        ctx, facts, billing, inventory, utilization, collection, columns=fact_columns(ruleset)
    )
    with console.status(
        f"evaluating {len(ruleset.active_rules)} rules over {table.height:,} resources…"
    ):
        result = recommend(state(ctx).engine(), table, ruleset, run_id=run_id)
    _print_run(result)


def _print_run(result: RunResult) -> None:
    run = result.run
    if result.already_recorded:
        console.print(f"run {run.id} was already recorded; nothing changed", highlight=False)
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_row("run", run.id)
    summary.add_row("rules", escape(run.rules))
    summary.add_row("resources", f"{run.facts:,}")
    summary.add_row("matched", f"{run.matched:,}")
    summary.add_row("new", f"{run.new:,}")
    summary.add_row("seen again", f"{run.seen_again:,}")
    summary.add_row("reopened", f"{run.reopened:,}")
    summary.add_row("resolved", f"{run.resolved:,}")
    summary.add_row("implemented", f"{run.implemented:,}")
    summary.add_row("still snoozed", f"{run.snoozed:,}")
    if run.conflicts:
        summary.add_row("skipped (changed meanwhile)", f"[yellow]{run.conflicts:,}[/]")
    summary.add_row("monthly savings", f"[bold green]{_money(run.monthly_savings)}[/]")
    console.print(summary, highlight=False)


def _money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value.quantize(Decimal('0.01')):,}"


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class TotalsBy(StrEnum):
    OWNER = "owner"
    ACCOUNT = "account"
    RULE = "rule"
    REGION = "region"


_CSV_FIELDS: Final = (
    "id",
    "status",
    "rule_id",
    "action",
    "resource_id",
    "resource_name",
    "account_id",
    "region",
    "kind",
    "owner",
    "monthly_savings",
    "currency",
    "savings_method",
    "superseded_by",
    "cost_30d",
    "title",
    "first_seen",
    "last_seen",
    "times_seen",
    "ticketed_at",
    "implemented_at",
    "realized_monthly_savings",
    "realized_method",
    "fingerprint",
)


@recommendations_app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        list[Status] | None,
        typer.Option("--status", "-s", help="Only these statuses (repeatable)."),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule id.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            help="At most this many (table default 50; csv and json default: all).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, csv or json (JSON lines).")
    ] = OutputFormat.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    totals_by: Annotated[
        list[TotalsBy] | None,
        typer.Option("--totals-by", help="Also print totals per owner, account, rule or region."),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="One line per recommendation with every column, never cut."),
    ] = False,
) -> None:
    """Recommendations, biggest monthly saving first, with totals per status.

    Totals count each resource once: where several rules fire on one resource, only the
    dominant action carries the saving (the others show "superseded by …").
    """
    engine = state(ctx).engine()
    filters = Filters(tuple(status or ()), rule, account, owner, region)
    if as_json:
        output = OutputFormat.JSON
    if output is not OutputFormat.TABLE:
        records: Iterable[RecommendationRecord] = iter_records(engine, filters)
        if limit is not None:
            records = itertools.islice(records, limit)
        _export(records, output)
        return
    store = RecommendationStore(engine)
    found = store.find(
        statuses=status,
        rule_id=rule,
        account_id=account,
        owner=owner,
        region=region,
        limit=limit or 50,
    )
    if wide:
        _print_wide(found)
        _print_totals(engine, "status", filters)
        for by in totals_by or ():
            _print_totals(engine, by.value, filters)
        return
    # Two lines a recommendation keep the table within 80 columns: what to do (rule, action)
    # and where (resource, region, kind).
    table = Table(title=None, pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("rule\naction", overflow="fold")
    table.add_column("resource\nregion · kind", overflow="fold")
    table.add_column("monthly", justify="right", no_wrap=True)
    for record in found:
        table.add_row(
            str(record.id),
            record.status.value,
            f"{escape(record.rule_id)}\n[dim]{escape(_action(record))}[/]",
            f"{escape(record.resource_id)}\n"
            f"[dim]{escape(record.region or '-')} · {escape(record.kind or '-')}[/]",
            f"{_money(record.monthly_savings)}\n{escape(record.currency or '-')}",
        )
    console.print(table)
    _print_totals(engine, "status", filters)
    for by in totals_by or ():
        _print_totals(engine, by.value, filters)


def _print_wide(found: Iterable[RecommendationRecord]) -> None:
    table = Table(title=None, pad_edge=False, box=box.SIMPLE_HEAD)
    for name in ("id", "status", "rule", "action", "resource", "account", "region", "kind"):
        table.add_column(name, no_wrap=True, justify="right" if name == "id" else "left")
    table.add_column("owner", no_wrap=True)
    table.add_column("monthly", justify="right", no_wrap=True)
    table.add_column("currency", no_wrap=True)
    for record in found:
        table.add_row(
            str(record.id),
            record.status.value,
            escape(record.rule_id),
            escape(_action(record)),
            escape(record.resource_id),
            escape(record.account_id or "-"),
            escape(record.region or "-"),
            escape(record.kind or "-"),
            escape(record.owner or "-"),
            _money(record.monthly_savings),
            escape(record.currency or "-"),
        )
    # As wide as the rows need: lines longer than the terminal, never a cut or wrapped id.
    Console(width=max(console.width, 400), emoji=False).print(table)


def _action(record: RecommendationRecord) -> str:
    action = record.params.get("type")
    return str(action) if action is not None else "-"


def _print_totals(engine: Engine, by: str, filters: Filters) -> None:
    rows = totals(engine, by, filters)
    table = Table(title=f"monthly savings by {by}", pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column(by, overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("monthly", justify="right")
    table.add_column("currency")
    for row in rows:
        table.add_row(
            escape(row.key or "-"),
            f"{row.count:,}",
            _money(row.monthly_savings),
            escape(row.currency or "-"),
        )
    console.print(table)


def _export(records: Iterable[RecommendationRecord], output: OutputFormat) -> None:
    if output is OutputFormat.JSON:
        for record in records:
            typer.echo(json.dumps(_as_json(record), sort_keys=True))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        values = _as_json(record)
        writer.writerow({name: _csv_value(values.get(name)) for name in _CSV_FIELDS})


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def _as_json(record: RecommendationRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "action": _action(record),
        "superseded_by": record.params.get("superseded_by"),
    }
    for name, value in record.__dict__.items():
        if isinstance(value, datetime):
            values[name] = value.isoformat()
        elif isinstance(value, Decimal):
            values[name] = str(value)
        elif isinstance(value, Status):
            values[name] = value.value
        else:
            values[name] = value
    return values


def _find(store: RecommendationStore, key: str) -> RecommendationRecord:
    record = store.get(int(key)) if key.isdigit() else store.get(key)
    if record is None:
        raise ConfigError(
            f"no recommendation {key!r}", fix="list them with `reclaim recommendations list`"
        )
    return record


@recommendations_app.command("show")
def show_command(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Recommendation id or fingerprint.")],
    rules: RulesOption = None,
    facts: FactsOption = None,
) -> None:
    """One recommendation: its figures, history, and why the rule matched the resource."""
    store = RecommendationStore(state(ctx).engine())
    record = _find(store, key)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("id", str(record.id))
    table.add_row("fingerprint", record.fingerprint)
    table.add_row("rule", record.rule_id)
    table.add_row("title", escape(record.title or "-"))
    table.add_row("resource", escape(record.resource_id))
    if record.resource_name:
        table.add_row("name", escape(record.resource_name))
    table.add_row("account", escape(record.account_id or "-"))
    table.add_row("region", escape(record.region or "-"))
    table.add_row("kind", escape(record.kind or "-"))
    table.add_row("action", escape(_action(record)))
    table.add_row("owner", escape(record.owner or "-"))
    table.add_row("status", record.status.value)
    if record.snoozed_until:
        table.add_row("snoozed until", record.snoozed_until.isoformat())
    currency = f" {record.currency}" if record.currency else ""
    table.add_row("monthly savings", f"{_money(record.monthly_savings)}{currency}")
    table.add_row("method", record.savings_method or "-")
    table.add_row("cost (30 days)", f"{_money(record.cost_30d)}{currency}")
    if record.implemented_at is not None:
        table.add_row("implemented", record.implemented_at.isoformat())
    if record.realized_monthly_savings is not None:
        table.add_row(
            "realized savings",
            f"{_money(record.realized_monthly_savings)}{currency}/month ({record.realized_method})",
        )
    table.add_row("first seen", record.first_seen.isoformat())
    table.add_row("last seen", f"{record.last_seen.isoformat()} ({record.times_seen}x)")
    table.add_row("params", escape(json.dumps(record.params, sort_keys=True)))
    console.print(table, highlight=False)
    history = store.observations(record.id)
    if history:
        console.print("[bold]seen in runs[/]")
        for obs in history[-10:]:
            console.print(
                f"  {obs.seen_at.isoformat()}  {obs.run_id}  {_money(obs.monthly_savings)}",
                highlight=False,
            )
    _print_explanation(ctx, record, rules, facts)


def _print_explanation(
    ctx: typer.Context,
    record: RecommendationRecord,
    rules: Path | None,
    facts: list[Path] | None,
) -> None:
    try:
        table = _facts(ctx, facts)
    except ConfigError as exc:
        console.print(f"[dim]no explanation: {escape(str(exc))}[/]", highlight=False)
        return
    rows = table.filter(pl.col("resource_id") == record.resource_id)
    if record.account_id is not None and "account_id" in rows.columns:
        rows = rows.filter(pl.col("account_id") == record.account_id)
    if rows.height == 0:
        console.print(
            "[dim]no explanation: the resource is not in these facts (it may be gone)[/]",
            highlight=False,
        )
        return
    ruleset = _load_rules(rules)
    if record.rule_id not in {rule.id for rule in ruleset.rules}:
        console.print(
            f"[dim]no explanation: rule {record.rule_id!r} is not in {ruleset.name}[/]",
            highlight=False,
        )
        return
    fact = rows.row(0, named=True)
    # The run evaluated the rules at the end of the data; explain them at the same moment.
    as_of = fact.get("as_of")
    explanation = ruleset.explain(
        fact, rule_ids=[record.rule_id], now=as_of if isinstance(as_of, datetime) else None
    )
    console.print("[bold]why[/]")
    for item in explanation.rules:
        if item.rule_id == record.rule_id:
            console.print(escape(item.render()), highlight=False)


@recommendations_app.command("dismiss")
def dismiss_command(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Recommendation id or fingerprint.")],
    days: Annotated[
        int, typer.Option("--days", min=1, help="Snooze: no ticket for this many days.")
    ] = 90,
) -> None:
    """Dismiss a recommendation: no ticket for --days, then it comes back if still true."""
    store = RecommendationStore(state(ctx).engine())
    record = _find(store, key)
    decision = store.apply_event(
        record.id, Event.DISMISS, now=datetime.now(UTC), snooze=timedelta(days=days)
    )
    until = decision.after.snoozed_until
    console.print(
        f"dismissed {record.id} ({record.rule_id} on {escape(record.resource_id)}) until "
        f"{until.date().isoformat() if until else '-'}",
        highlight=False,
    )


@recommendations_app.command("realized")
def realized_command(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, csv or json (JSON lines).")
    ] = OutputFormat.TABLE,
) -> None:
    """Realized savings by owner and month the work was done (measured from later bills)."""
    rows = realized_by_owner_and_month(
        state(ctx).engine(), Filters(owner=owner, account_id=account)
    )
    fields = ("owner", "month", "implemented", "realized_monthly_savings", "currency")
    if output is OutputFormat.JSON:
        for row in rows:
            values = {name: getattr(row, name) for name in fields}
            values["realized_monthly_savings"] = str(row.realized_monthly_savings)
            typer.echo(json.dumps(values, sort_keys=True))
        return
    if output is OutputFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(
                ["" if getattr(row, name) is None else getattr(row, name) for name in fields]
            )
        return
    table = Table(title="realized savings", pad_edge=False, box=box.SIMPLE_HEAD)
    for name, justify in (
        ("owner", "left"),
        ("month", "left"),
        ("done", "right"),
        ("saved/month", "right"),
        ("currency", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            escape(row.owner or "-"),
            row.month,
            f"{row.implemented:,}",
            _money(row.realized_monthly_savings),
            escape(row.currency or "-"),
        )
    console.print(table)


@recommendations_app.command("runs")
def runs_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 10,
) -> None:
    """The latest recommend runs and what each changed."""
    runs = RecommendationStore(state(ctx).engine()).runs(limit=limit)
    table = Table()
    for name in ("run", "finished", "resources", "matched", "new", "resolved", "monthly"):
        table.add_column(name)
    for run in runs:
        table.add_row(
            run.id,
            run.finished_at.isoformat(timespec="seconds"),
            f"{run.facts:,}",
            f"{run.matched:,}",
            f"{run.new:,}",
            f"{run.resolved:,}",
            _money(run.monthly_savings),
        )
    console.print(table)
