"""``reclaim db``: bring the database to the newest schema and show where it stands."""

from __future__ import annotations

__all__ = ["app"]

import typer
from rich.table import Table

from reclaim.cli.context import console, state
from reclaim.store import MigrationStatus, migration_status, upgrade

app = typer.Typer(help="Create or migrate reclaim's database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Apply every migration the database lacks (safe to run again)."""
    engine = state(ctx).engine()
    before = migration_status(engine)
    after = upgrade(engine)
    if before.pending:
        console.print(
            f"[green]upgraded[/] {after.url}: applied {len(before.pending)} migration(s)",
            highlight=False,
        )
        for revision in before.pending:
            console.print(f"  {revision.id}  {revision.message}", highlight=False)
    else:
        console.print(f"{after.url} is already up to date", highlight=False)


@app.command("status")
def status_command(ctx: typer.Context) -> None:
    """Show the database, its schema revision, and any migrations not yet applied."""
    status = migration_status(state(ctx).engine())
    _print_status(status)
    if not status.up_to_date:
        raise typer.Exit(code=3)


def _print_status(status: MigrationStatus) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("database", status.url)
    table.add_row("current", ", ".join(status.current) or "(empty: never migrated)")
    table.add_row("newest", ", ".join(status.heads))
    if status.up_to_date:
        table.add_row("state", "[green]up to date[/]")
    else:
        table.add_row(
            "state",
            f"[yellow]{len(status.pending)} migration(s) pending[/]: run `reclaim db upgrade`",
        )
    console.print(table, highlight=False)
    for revision in status.pending:
        console.print(f"  pending {revision.id}  {revision.message}", highlight=False)
