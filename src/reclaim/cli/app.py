"""The root command: global options, sub-commands, and turning errors into one clear line."""

from __future__ import annotations

__all__ = ["app", "main"]

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from reclaim import __version__
from reclaim.cli import collect as collect_commands
from reclaim.cli import db as db_commands
from reclaim.cli import demo as demo_commands
from reclaim.cli import jira as jira_commands
from reclaim.cli import recommend as recommend_commands
from reclaim.cli import rules as rules_commands
from reclaim.cli import run as run_commands
from reclaim.cli import runs as runs_commands
from reclaim.cli import tickets as tickets_commands
from reclaim.cli import worker as worker_commands
from reclaim.cli.context import err_console, state
from reclaim.errors import ConfigError, ReclaimError

app = typer.Typer(
    name="reclaim",
    help="Find cloud waste, ticket each saving to the team that owns it, report the money saved.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db_commands.app, name="db")
app.command("run")(run_commands.run_command)
app.add_typer(collect_commands.app, name="collect")
app.add_typer(collect_commands.sample_app, name="sample")
app.add_typer(rules_commands.app, name="rules")
app.add_typer(runs_commands.app, name="runs")
app.command("recommend")(recommend_commands.recommend_command)
app.add_typer(recommend_commands.recommendations_app, name="recommendations")
app.command("worker")(worker_commands.worker)
app.add_typer(worker_commands.schedules_app, name="schedules")
app.command("demo")(demo_commands.demo)
app.add_typer(jira_commands.jira_app, name="jira")
app.add_typer(tickets_commands.app, name="tickets")
app.add_typer(jira_commands.sim_app, name="jira-sim")

# Read before Typer parses anything, so an error while parsing can still honour --debug.
_debug_requested = "--debug" in sys.argv


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"reclaim {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (sqlite:///file.db or postgresql://…). "
            "Default: $RECLAIM_DATABASE_URL, else a SQLite file in your data directory.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    cli_state = state(ctx)
    cli_state.db_option = db
    cli_state.debug = debug


def main() -> None:
    """Console-script entry point: run the app, and report failures as one line."""
    try:
        app()
    except ReclaimError as exc:
        _fail(exc, exit_code=2 if isinstance(exc, ConfigError) else 1)
    except SQLAlchemyError as exc:
        _fail(exc, exit_code=1, prefix="database error: ")
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


def _fail(exc: BaseException, *, exit_code: int, prefix: str = "") -> None:
    if _debug_requested:
        err_console.print_exception(show_locals=False)
    else:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        err_console.print(
            f"[bold red]error:[/] {prefix}{first_line}", highlight=False, soft_wrap=True
        )
        if not isinstance(exc, ReclaimError):
            err_console.print("run again with --debug to see the traceback", style="dim")
    sys.exit(exit_code)
