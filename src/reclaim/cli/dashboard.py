"""``reclaim dashboard``: serve the dashboard alone, on this machine, until interrupted."""

from __future__ import annotations

__all__ = ["dashboard_command"]

from typing import Annotated

import typer

from reclaim.cli.context import console, state
from reclaim.errors import ConfigError


def dashboard_command(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL (default: the global --db or RECLAIM_DATABASE_URL)."
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="Address to bind. The dashboard alone has no login: keep it local."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8050,
) -> None:
    """Serve the dashboard (savings, recommendations, runs, sync health) in a browser."""
    import sqlalchemy as sa
    import uvicorn

    # Registers the weekly workflow, so Resume drives its runs in this process.
    import reclaim.pipeline  # noqa: F401
    from reclaim.dashboard import standalone_app
    from reclaim.store import create_engine, redact_url
    from reclaim.store.tables.recommend import recommendations

    cli = state(ctx)
    if db is not None:
        cli.db_option = db
    url = cli.database_url
    engine = create_engine(url)
    if not sa.inspect(engine).has_table(recommendations.name):
        raise ConfigError(
            f"{redact_url(url)} has no reclaim tables", fix="run `reclaim db upgrade` first"
        )
    console.print(
        f"dashboard of {redact_url(url)} on [bold]http://{host}:{port}/[/] (Ctrl-C stops it)",
        highlight=False,
    )
    uvicorn.run(standalone_app(engine), host=host, port=port, log_level="warning")
