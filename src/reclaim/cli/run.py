"""``reclaim run``: the main job, one weekly loop over the given files."""

from __future__ import annotations

__all__ = ["print_weekly_run", "run_command"]

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reclaim.cli.context import console, state
from reclaim.pipeline import WeeklyInput, WeeklyRun, resume_weekly, run_weekly
from reclaim.store import migration_status

FilesOption = Annotated[
    list[Path] | None,
    typer.Option(help="A file or folder of this kind (repeatable).", show_default=False),
]


def run_command(
    ctx: typer.Context,
    billing: FilesOption = None,
    inventory: FilesOption = None,
    utilization: FilesOption = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Savings rule file instead of the built-in pack.", show_default=False),
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Use the small sample bundled with reclaim.")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue this stopped run instead of starting one.", show_default=False),
    ] = None,
) -> None:
    """Run the weekly loop (collect, recommend, report) as a durable workflow."""
    engine = state(ctx).engine()
    status = migration_status(engine)
    if not status.up_to_date:
        console.print(
            f"[yellow]{status.url} has {len(status.pending)} migration(s) pending[/]: "
            "run `reclaim db upgrade` first",
            highlight=False,
        )
        raise typer.Exit(code=2)
    if resume:
        result = resume_weekly(engine, resume)
    else:
        spec = WeeklyInput(
            billing=[str(path) for path in billing or ()],
            inventory=[str(path) for path in inventory or ()],
            utilization=[str(path) for path in utilization or ()],
            rules=str(rules) if rules else None,
            sample=sample,
        )
        result = run_weekly(engine, spec)
    print_weekly_run(result)


def print_weekly_run(result: WeeklyRun, *, top: int = 10) -> None:
    collected = result.collect
    counts = result.recommend.counts
    console.print(
        f"[bold]collect[/]    {collected.resources:,} resources from {collected.rows_read:,} rows"
        f" ({collected.bad_rows:,} bad rows skipped)"
        + ("" if collected.new else "; these files were already collected: nothing new stored"),
        highlight=False,
    )
    console.print(
        f"[bold]recommend[/]  {counts.get('matched', 0):,} matches: {counts.get('new', 0):,} new,"
        f" {counts.get('seen_again', 0):,} seen again, {counts.get('resolved', 0):,} resolved,"
        f" {counts.get('reopened', 0):,} reopened, {counts.get('snoozed', 0):,} snoozed",
        highlight=False,
    )
    report = result.report
    statuses = ", ".join(
        f"{count:,} {status}" for status, count in sorted(report.by_status.items())
    )
    console.print(f"[bold]report[/]     {statuses or 'no recommendations'}", highlight=False)
    table = Table(title=f"Open savings by rule (top {top})", title_justify="left")
    table.add_column("rule")
    table.add_column("open", justify="right")
    table.add_column("monthly savings", justify="right")
    for rule in report.by_rule[:top]:
        table.add_row(rule.rule_id, f"{rule.open:,}", f"${rule.monthly_savings:,.2f}")
    table.add_row("[bold]total[/]", "", f"[bold]${report.open_monthly_savings:,.2f}[/]")
    console.print(table)
    console.print(f"durable run {result.run_id}: `reclaim runs show {result.run_id}`", style="dim")
