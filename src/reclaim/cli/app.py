"""The root command: global options, sub-commands, and turning errors into one clear line."""

from __future__ import annotations

__all__ = ["LAZY_COMMANDS", "LazyCommand", "app", "hoist_global_options", "main"]

import importlib
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from reclaim import __version__
from reclaim.cli.coercion import use_plain_converters
from reclaim.cli.context import err_console, state
from reclaim.errors import ConfigError, ReclaimError

# Text and path parameters are converted without importing pydantic (see coercion.py).
use_plain_converters()


@dataclass(frozen=True)
class LazyCommand:
    """A sub-command whose module is imported only when it runs (or shows its own help).

    ``attribute`` names a Typer app (a group such as ``reclaim rules``) or a function (a
    command such as ``reclaim run``) in ``module``. ``summary`` is what ``reclaim --help``
    shows: the first paragraph of the command's own help, which a test keeps equal.
    """

    module: str
    attribute: str
    summary: str


# In the order ``reclaim --help`` lists them (Typer lists commands before groups).
LAZY_COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "reclaim.cli.run",
        "run_command",
        "Run the weekly loop (collect, evaluate, ticket, sync back, report) durably.",
    ),
    "init": LazyCommand(
        "reclaim.cli.config", "init_command", "Write a commented starter reclaim.yaml."
    ),
    "recommend": LazyCommand(
        "reclaim.cli.recommend",
        "recommend_command",
        "Evaluate the savings rules over the facts and store the recommendations.",
    ),
    "worker": LazyCommand(
        "reclaim.cli.worker",
        "worker",
        "Run a worker: claim durable runs and drive them, resuming what dead workers left.",
    ),
    "serve": LazyCommand(
        "reclaim.cli.serve",
        "serve",
        "Serve the JSON API, the Jira webhook, /metrics, /healthz, /readyz and the scheduler.",
    ),
    "demo": LazyCommand(
        "reclaim.cli.demo",
        "demo",
        "Three weeks of the whole loop on the bundled sample, with a Jira simulator.",
    ),
    "config": LazyCommand(
        "reclaim.cli.config", "app", "Check reclaim.yaml and reach what it names."
    ),
    "dashboard": LazyCommand(
        "reclaim.cli.dashboard",
        "dashboard_command",
        "Serve the dashboard (savings, recommendations, runs, sync health) in a browser.",
    ),
    "db": LazyCommand("reclaim.cli.db", "app", "Create or migrate reclaim's database."),
    "collect": LazyCommand(
        "reclaim.cli.collect",
        "app",
        "Collect billing, inventory and utilization into per-resource facts.",
    ),
    "sample": LazyCommand(
        "reclaim.cli.collect", "sample_app", "Synthetic sample data to try reclaim on."
    ),
    "rules": LazyCommand(
        "reclaim.cli.rules", "app", "Check, evaluate, explain and test YAML rule files."
    ),
    "runs": LazyCommand("reclaim.cli.runs", "app", "Inspect and operate durable workflow runs."),
    "recommendations": LazyCommand(
        "reclaim.cli.recommend",
        "recommendations_app",
        "List, inspect and dismiss the stored recommendations.",
    ),
    "schedules": LazyCommand(
        "reclaim.cli.worker", "schedules_app", "Cron schedules: each tick starts exactly one run."
    ),
    "policy": LazyCommand(
        "reclaim.cli.policy",
        "app",
        "Check Terraform/OpenTofu plans against policies in CI, and test the policies.",
    ),
    "tokens": LazyCommand(
        "reclaim.cli.serve",
        "tokens_app",
        "API tokens for reclaim serve: shown once, stored as hashes.",
    ),
    "infra": LazyCommand(
        "reclaim.cli.infra",
        "app",
        "Plan and apply Terraform/OpenTofu stacks over their dependency DAG, durably.",
    ),
    "jira": LazyCommand("reclaim.cli.jira", "jira_app", "Connect reclaim to Jira."),
    "tickets": LazyCommand(
        "reclaim.cli.tickets", "app", "Tickets in Jira: distribute, sync back, list, show."
    ),
    "jira-sim": LazyCommand(
        "reclaim.cli.jira",
        "sim_app",
        "A Jira Cloud simulator for trying reclaim without a Jira site.",
    ),
}


class _Placeholder(TyperCommand):
    """Stands in for a sub-command in ``reclaim --help`` until the sub-command is used."""


def load_command(name: str) -> Any:
    """The real (click) command of a lazy sub-command, importing its module.

    Typed ``Any``: Typer builds on Click or, from 0.29, on its own copy of Click, and this
    module must not depend on which."""
    entry = LAZY_COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    holder = typer.Typer(rich_markup_mode="rich")
    holder.command(name)(target)
    return typer.main.get_command(holder)


class _LazyGroup(TyperGroup):
    """The root group: lists every sub-command from :data:`LAZY_COMMANDS` and imports a
    sub-command's module only when it is invoked.

    Importing every command module up front pulled in SQLAlchemy, Polars, boto3 and the
    collectors for ``reclaim --help`` and ``reclaim rules check``, which need none of them.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in LAZY_COMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name, help=entry.summary))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Placeholder) and name is not None:
            command = self.commands[name] = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="reclaim",
    help="Find cloud waste, ticket each saving to the team that owns it, report the money saved.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=_LazyGroup,
)

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


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--db URL`` (or ``--db=URL``) written after the sub-command to the front.

    ``--db`` belongs to the root command, but people write it where they think of it:
    ``reclaim runs list --db …``. No sub-command has a ``--db`` of its own, so moving it is
    unambiguous. Everything after a ``--`` is left alone.
    """
    head: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest.extend(argv[index:])
            break
        if arg == "--db" and index + 1 < len(argv):
            head.extend(argv[index : index + 2])
            index += 2
            continue
        if arg.startswith("--db="):
            head.append(arg)
        else:
            rest.append(arg)
        index += 1
    return head + rest


def main() -> None:
    """Console-script entry point: run the app, and report failures as one line."""
    try:
        app(args=hoist_global_options(sys.argv[1:]))
    except ReclaimError as exc:
        _fail(exc, exit_code=2 if isinstance(exc, ConfigError) else 1)
    except Exception as exc:
        # SQLAlchemy is imported only by the commands that use a database, so a database
        # error can only come after it was; checking sys.modules keeps it out of the others.
        sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
        if sqlalchemy_errors is not None and isinstance(exc, sqlalchemy_errors.SQLAlchemyError):
            _fail(exc, exit_code=1, prefix="database error: ")
        raise
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
