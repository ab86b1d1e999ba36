"""``reclaim demo``: the main job on the embedded default, saying plainly what it did."""

from __future__ import annotations

__all__ = ["demo"]

from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_path
from rich.rule import Rule

from reclaim.cli.context import console, state
from reclaim.cli.run import print_weekly_run
from reclaim.durable import DurableEngine
from reclaim.pipeline import WeeklyInput, run_weekly
from reclaim.store import create_engine, migration_status, upgrade


def _demo_database_path() -> Path:
    return user_data_path("reclaim", appauthor=False) / "demo.db"


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the last demo database instead of starting fresh."),
    ] = False,
) -> None:
    """Run the weekly loop on bundled sample data in a SQLite demo database."""
    cli_state = state(ctx)
    if cli_state.db_option:
        url = cli_state.database_url
    else:
        path = _demo_database_path()
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    engine = create_engine(url)

    console.print(Rule("reclaim demo"))
    before = migration_status(engine)
    after = upgrade(engine)
    console.print(
        f"[bold]database[/]  {after.url}\n          applied {len(before.pending)} "
        f"migration(s); schema at {', '.join(after.current)}",
        highlight=False,
    )

    console.print(Rule("week 1: the weekly loop on the bundled sample"))
    first = run_weekly(engine, WeeklyInput(sample=True))
    print_weekly_run(first)

    console.print(Rule("week 2: the same data again"))
    second = run_weekly(engine, WeeklyInput(sample=True))
    print_weekly_run(second, top=3)
    total_first = sum(first.report.by_status.values())
    total_second = sum(second.report.by_status.values())
    console.print(
        f"recommendations stored after week 1: {total_first:,}; after week 2: {total_second:,}"
        " (a recommendation seen again updates its row, never duplicates it)",
        highlight=False,
    )

    console.print(Rule("the durable run behind week 2"))
    durable = DurableEngine(engine)
    for step in durable.steps(second.run_id):
        took = f"{step.duration * 1000:,.0f} ms" if step.duration is not None else "-"
        console.print(f"  {step.step:<10} {step.status.value:<10} {took:>9}", highlight=False)
    console.print(Rule())
    console.print(
        "demo finished. Not yet in the loop: tickets to Jira and the sync back (later issues).",
        style="green",
    )
