"""``reclaim demo``: the main job on the embedded default, saying plainly what it did."""

from __future__ import annotations

__all__ = ["demo"]

from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_path
from rich.rule import Rule

from reclaim.cli.context import console, state
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
    console.print(Rule())
    console.print("demo finished", style="green")
