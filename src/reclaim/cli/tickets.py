"""``reclaim tickets distribute|sync|write-back|list|show``: recommendations to Jira and back."""

from __future__ import annotations

__all__ = ["app"]

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reclaim.cli.context import console, state
from reclaim.durable import DurableEngine
from reclaim.errors import ConfigError
from reclaim.sync import (
    BatchResult,
    Poller,
    TicketLedger,
    WriteBackSettings,
    distribute_workflow,
    write_back,
)
from reclaim.tickets import connect, credentials_from_env

app = typer.Typer(help="Tickets in Jira: distribute, sync back, list, show.", no_args_is_help=True)


@app.command("distribute")
def distribute_command(
    ctx: typer.Context,
    routing: Annotated[Path | None, typer.Option(help="Routing rule file.")] = None,
    templates: Annotated[Path | None, typer.Option(help="Ticket templates file.")] = None,
    default_project: Annotated[
        str | None, typer.Option(help="Project for items no routing rule claims.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many new tickets.")] = None,
    rate: Annotated[float, typer.Option(help="Jira requests per second at most.")] = 10.0,
    grace: Annotated[
        float, typer.Option(help="Seconds Jira's search may lag a create (reconcile wait).")
    ] = 30.0,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Resume this distribution run.")
    ] = None,
    ticket_batch: Annotated[
        int,
        typer.Option(
            min=1, max=50, help="Tickets per durable item (one Jira bulk create); 1: one by one."
        ),
    ] = 50,
) -> None:
    """One ticket per open recommendation, exactly once (a durable run: resumable)."""
    credentials_from_env()  # fail now, before a run is recorded, if Jira is not configured
    options = {
        "routing": str(routing) if routing else None,
        "templates": str(templates) if templates else None,
        "default_project": default_project,
        "limit": limit,
        "requests_per_second": rate,
        "grace": grace,
        "ticket_batch": ticket_batch,
    }
    durable = DurableEngine(state(ctx).engine())
    result = durable.run_workflow(distribute_workflow, options, run_id=run_id)
    chunks = [BatchResult.model_validate(chunk) for chunk in dict(result or {}).values()]
    created = sum(len(chunk.keys) for chunk in chunks)
    console.print(f"{created} ticket(s) distributed", highlight=False)
    for chunk in chunks:
        for fingerprint, reason in chunk.refused.items():
            console.print(f"refused by Jira: {fingerprint}: {reason}", highlight=False)


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    lag: Annotated[float, typer.Option(help="Seconds behind now the poll stops.")] = 30.0,
    overlap: Annotated[float, typer.Option(help="Seconds re-read before the watermark.")] = 120.0,
) -> None:
    """Poll Jira for changed tickets and apply them to the recommendations."""
    with connect(credentials_from_env()) as client:
        poller = Poller(
            client, state(ctx).engine(), lag_ms=int(lag * 1000), overlap_ms=int(overlap * 1000)
        )
        result = poller.poll()
    events = ", ".join(f"{k} {v}" for k, v in sorted(result.events.items())) or "no events"
    console.print(
        f"{result.seen} issue(s) read in {result.pages} page(s), {result.applied} changed: "
        f"{events}; watermark {result.watermark_ms}",
        highlight=False,
    )


@app.command("write-back")
def write_back_command(
    ctx: typer.Context,
    rate: Annotated[float, typer.Option(help="Jira requests per second at most.")] = 10.0,
    savings_ratio: Annotated[
        float, typer.Option(help="Post a saving again when it moved by this share at least.")
    ] = 0.2,
    savings_minimum: Annotated[
        float, typer.Option(help="… and by this amount at least (recommendation's currency).")
    ] = 10.0,
) -> None:
    """Write reclaim's changes onto the tickets: reopen, close, savings (each exactly once).

    Run it after `reclaim tickets sync`, so it decides on fresh ticket statuses.
    """
    settings = WriteBackSettings(
        savings_ratio=Decimal(str(savings_ratio)), savings_minimum=Decimal(str(savings_minimum))
    )
    with connect(credentials_from_env(), requests_per_second=rate) as client:
        report = write_back(state(ctx).engine(), client, settings=settings)
    events = ", ".join(f"{k} {v}" for k, v in sorted(report.events.items())) or "no events"
    console.print(
        f"{report.reopened} reopened, {report.closed} closed, {report.savings_updated} savings "
        f"update(s), {report.commented} comment(s) alone, {report.recognised} found already "
        f"done; {events}",
        highlight=False,
    )
    for key, reason in sorted(report.failed.items()):
        console.print(f"[yellow]{key}[/yellow]: {reason}", highlight=False)
    if report.busy:
        console.print(f"{report.busy} ticket(s) held by another write-back", highlight=False)


@app.command("list")
def list_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """Tickets reclaim created, oldest first."""
    table = Table("key", "project", "state", "status", "resolution", "fingerprint")
    for row in TicketLedger(state(ctx).engine()).all(limit=limit):
        table.add_row(
            row.key or "—",
            row.project,
            row.state,
            row.status or "",
            row.resolution or "",
            row.fingerprint,
        )
    console.print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Jira key (OPS-12), ticket id or fingerprint.")],
) -> None:
    """One ticket: where it is in Jira and in reclaim."""
    ledger = TicketLedger(state(ctx).engine())
    row = ledger.find(key) or ledger.get(key)
    if row is None:
        raise ConfigError(f"no ticket {key!r}", fix="see reclaim tickets list")
    for name, value in (
        ("key", row.key),
        ("url", row.url),
        ("project", row.project),
        ("state", row.state),
        ("status", row.status),
        ("status category", row.status_category),
        ("resolution", row.resolution),
        ("fingerprint", row.fingerprint),
        ("intent at", row.intent_at.isoformat()),
        ("create attempts", row.attempts),
    ):
        console.print(f"{name:>16}: {value if value is not None else '—'}", highlight=False)
