"""``reclaim run``: the main job, one weekly loop as configured in reclaim.yaml."""

from __future__ import annotations

__all__ = ["loop_progress", "print_weekly_run", "run_command", "weekly_input"]

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reclaim.cli.config import ConfigOption, load_cli_config
from reclaim.cli.context import console, state
from reclaim.config import ReclaimConfig
from reclaim.database import Backend, backend_of
from reclaim.pipeline import (
    WeeklyInput,
    WeeklyRun,
    add_progress_observer,
    resume_weekly,
    run_weekly,
)
from reclaim.store import migration_status

FilesOption = Annotated[
    list[Path] | None,
    typer.Option(help="A file or folder of this kind (repeatable).", show_default=False),
]

_STEP_TITLES = {
    "collect": "collect bills, inventory, metrics",
    "sync_back": "sync back from Jira",
    "evaluate": "evaluate savings rules",
    "write_back": "write back to the tickets",
    "distribute": "create tickets",
}


def weekly_input(
    config: ReclaimConfig | None,
    *,
    billing: list[Path] | None = None,
    inventory: list[Path] | None = None,
    utilization: list[Path] | None = None,
    rules: Path | None = None,
    sample: bool = False,
) -> WeeklyInput:
    """The run's input: the configuration, with what the command line names taking its place."""
    flags = bool(billing or inventory or utilization or sample)
    if config is None:
        return WeeklyInput(
            billing=[str(p) for p in billing or ()],
            inventory=[str(p) for p in inventory or ()],
            utilization=[str(p) for p in utilization or ()],
            rules=str(rules) if rules else None,
            sample=sample,
        )
    sources = config.sources
    return WeeklyInput(
        billing=[str(p) for p in billing or ()] if flags else sources.billing,
        inventory=[str(p) for p in inventory or ()] if flags else sources.inventory,
        utilization=[str(p) for p in utilization or ()] if flags else sources.utilization,
        sample=sample if flags else sources.sample,
        rules=str(rules) if rules else config.rules.savings,
        jira=config.jira,
        routing=config.rules.routing,
        templates=config.rules.templates,
        default_project=config.rules.default_project,
        snooze_days=config.snooze.wont_do_days,
        wont_do_resolutions=config.snooze.wont_do_resolutions,
    )


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
    config: ConfigOption = None,
    distribute_items: Annotated[
        bool | None,
        typer.Option(
            "--distribute-items/--no-distribute-items",
            help="Queue the ticket items so that running `reclaim worker`s share them "
            "[default: on for PostgreSQL, off for SQLite].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the weekly loop (collect, evaluate, ticket, sync back, report) durably.

    Reads reclaim.yaml (--config, $RECLAIM_CONFIG, ./reclaim.yaml) when there is one; files
    given here replace its sources. Without a jira section no tickets are made.
    """
    cli_state = state(ctx)
    loaded = load_cli_config(cli_state, config)
    engine = cli_state.engine()
    status = migration_status(engine)
    if not status.up_to_date:
        console.print(
            f"[yellow]{status.url} has {len(status.pending)} migration(s) pending[/]: "
            "run `reclaim db upgrade` first",
            highlight=False,
        )
        raise typer.Exit(code=2)
    share = (
        distribute_items
        if distribute_items is not None
        else backend_of(engine) is Backend.POSTGRESQL
    )
    with loop_progress():
        if resume:
            result = resume_weekly(engine, resume, distribute_items=share)
        else:
            spec = weekly_input(
                loaded,
                billing=billing,
                inventory=inventory,
                utilization=utilization,
                rules=rules,
                sample=sample,
            )
            result = run_weekly(engine, spec, distribute_items=share)
    print_weekly_run(result)


@contextlib.contextmanager
def loop_progress() -> Iterator[None]:
    """Rich progress on the long steps of the loop driven in this process (counts, rates)."""
    if not console.is_terminal:
        yield
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def observe(step: str, advanced: int, total: int | None) -> None:
        task = tasks.get(step)
        if task is None:
            # A new step means the earlier ones ended: the driver runs them one by one.
            for earlier in tasks.values():
                progress.update(earlier, visible=False)
            task = progress.add_task(_STEP_TITLES.get(step, step), total=total, rate="")
            tasks[step] = task
        elif total is not None:
            progress.update(task, total=total)
        progress.update(task, advance=advanced)
        speed = progress.tasks[task].speed
        if speed:
            progress.update(task, rate=f"{speed:,.1f}/s")

    remove = add_progress_observer(observe)
    try:
        with progress:
            yield
    finally:
        remove()


def print_weekly_run(result: WeeklyRun, *, top: int = 10) -> None:
    collected = result.collect
    counts = result.recommend.counts
    console.print(
        f"[bold]collect[/]    {collected.resources:,} resources from {collected.rows_read:,} rows"
        f" ({collected.bad_rows:,} bad rows skipped)"
        + ("" if collected.new else "; these files were already collected: nothing new stored"),
        highlight=False,
    )
    sync = result.sync
    if sync.enabled:
        events = ", ".join(f"{n:,} {event}" for event, n in sorted(sync.events.items()))
        console.print(
            f"[bold]sync back[/]  {sync.issues_read:,} tickets changed in Jira since the last"
            f" run: {events or 'nothing for reclaim'}",
            highlight=False,
        )
    console.print(
        f"[bold]evaluate[/]   {counts.get('matched', 0):,} matches: {counts.get('new', 0):,} new,"
        f" {counts.get('seen_again', 0):,} seen again, {counts.get('resolved', 0):,} resolved,"
        f" {counts.get('reopened', 0):,} reopened, {counts.get('snoozed', 0):,} snoozed",
        highlight=False,
    )
    written = result.write_back
    if written.enabled:
        console.print(
            f"[bold]write back[/] {written.reopened:,} tickets reopened, {written.closed:,} closed,"
            f" {written.commented:,} commented ({written.savings_updated:,} with a new saving)"
            + (f"; {len(written.failed):,} left for the next run" if written.failed else ""),
            highlight=False,
        )
    distribute = result.distribute
    if distribute.enabled:
        console.print(
            f"[bold]tickets[/]    {distribute.created:,} created"
            f" ({distribute.planned:,} open recommendations without one)"
            + (
                f"; {len(distribute.refused):,} refused by Jira, tried again next run"
                if distribute.refused
                else ""
            ),
            highlight=False,
        )
    else:
        console.print(
            "[bold]tickets[/]    none: no jira section in the configuration", highlight=False
        )
    report = result.report
    statuses = ", ".join(
        f"{count:,} {status}" for status, count in sorted(report.by_status.items())
    )
    console.print(f"[bold]report[/]     {statuses or 'no recommendations'}", highlight=False)
    table = Table(title=f"Open savings by rule (top {top})", title_justify="left")
    table.add_column("rule", overflow="fold")
    table.add_column("open", justify="right")
    table.add_column("monthly savings", justify="right")
    for rule in report.by_rule[:top]:
        table.add_row(rule.rule_id, f"{rule.open:,}", f"${rule.monthly_savings:,.2f}")
    table.add_row("[bold]total[/]", "", f"[bold]${report.open_monthly_savings:,.2f}[/]")
    console.print(table)
    print_loop_totals(result)
    console.print(f"durable run {result.run_id}: `reclaim runs show {result.run_id}`", style="dim")


def print_loop_totals(result: WeeklyRun) -> None:
    loop = result.report.loop
    table = Table(title="The loop so far (monthly savings)", title_justify="left")
    table.add_column("found", justify="right")
    table.add_column("ticketed", justify="right")
    table.add_column("done", justify="right")
    table.add_column("realized", justify="right")
    table.add_row(f"{loop.found:,}", f"{loop.ticketed:,}", f"{loop.done:,}", f"{loop.realized:,}")
    table.add_row(
        f"${loop.found_monthly:,.2f}",
        f"${loop.ticketed_monthly:,.2f}",
        f"${loop.done_monthly:,.2f}",
        f"[bold green]${loop.realized_monthly:,.2f}[/]",
    )
    console.print(table)
