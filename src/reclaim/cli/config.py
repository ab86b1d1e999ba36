"""``reclaim init`` (write a commented reclaim.yaml) and ``reclaim config check|show``."""

from __future__ import annotations

__all__ = [
    "app",
    "check_config",
    "config_source",
    "configured_schedules",
    "init_command",
    "load_cli_config",
]

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reclaim.cli.context import CliState, console, err_console, state
from reclaim.config import (
    DEFAULT_CONFIG_NAME,
    ConfigFileError,
    ReclaimConfig,
    find_config,
    load_config,
    parse_config,
    starter_config,
)
from reclaim.errors import ConfigError, ReclaimError

if TYPE_CHECKING:
    from reclaim.durable import Schedule

app = typer.Typer(help="Check reclaim.yaml and reach what it names.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=f"Configuration file. Default: $RECLAIM_CONFIG, else ./{DEFAULT_CONFIG_NAME}.",
        show_default=False,
    ),
]


def load_cli_config(cli_state: CliState, option: Path | None) -> ReclaimConfig | None:
    """The configuration a command runs with (``None`` when there is none); its database
    becomes the fallback after --db and $RECLAIM_DATABASE_URL."""
    path = find_config(option)
    if path is None:
        return None
    config = load_config(path)
    cli_state.config_database = config.database.resolve()
    return config


def configured_schedules(config: ReclaimConfig) -> list[Schedule]:
    """The file's schedules, each starting the weekly loop with the input ``reclaim run``
    builds from the same file."""
    from reclaim.cli.run import weekly_input
    from reclaim.service import weekly_schedules

    return weekly_schedules(config, weekly_input(config).model_dump(mode="json"))


def config_source(config: ReclaimConfig) -> str:
    """The file a configuration was read from, as an absolute path (shown beside its
    schedules)."""
    return str(Path(config.path).resolve()) if config.path else DEFAULT_CONFIG_NAME


def init_command(
    path: Annotated[Path, typer.Argument(help="Where to write it.", show_default=True)] = Path(
        DEFAULT_CONFIG_NAME
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter reclaim.yaml.

    It runs the bundled sample on a SQLite file, without Jira until you add it.
    """
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", fix="pass --force to overwrite it")
    text = starter_config()
    parse_config(text, str(path))  # the starter must always be valid as written
    path.write_text(text, encoding="utf-8")
    console.print(
        f"wrote {path}: edit it, then `reclaim config check` and `reclaim run`", highlight=False
    )


@app.command("check")
def check_command(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Validate the file, then reach what it names: files, rules, database, Jira."""
    problems = check_config(state(ctx), config, report=console.print)
    if problems:
        err_console.print(f"[bold red]{problems} problem(s)[/]", highlight=False)
        raise typer.Exit(code=1)
    console.print("[green]configuration OK[/]")


@app.command("show")
def show_command(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Print the configuration as reclaim reads it (paths resolved; secrets are only named)."""
    loaded = load_cli_config(state(ctx), config)
    if loaded is None:
        raise ConfigError(
            "no configuration file found", fix="write one with `reclaim init` or pass --config"
        )
    console.print_json(loaded.model_dump_json())


def check_config(cli_state: CliState, option: Path | None, *, report: Callable[..., None]) -> int:
    """Print one line per check; return how many problems were found."""
    problems = 0

    def bad(text: str) -> None:
        nonlocal problems
        problems += 1
        report(f"[red]✗[/] {text}", highlight=False, soft_wrap=True)

    def good(text: str) -> None:
        report(f"[green]✓[/] {text}", highlight=False, soft_wrap=True)

    try:
        path = find_config(option)
    except ConfigError as exc:
        bad(str(exc))
        return problems
    if path is None:
        bad(
            f"no configuration: no --config, no $RECLAIM_CONFIG, no ./{DEFAULT_CONFIG_NAME}; "
            "write one with `reclaim init`"
        )
        return problems
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            bad(str(problem))
        return problems
    except ConfigError as exc:
        bad(str(exc))
        return problems
    good(f"{path}: valid")

    for key, named in config.files():
        if not Path(named).exists():
            bad(f"{key}: {named} does not exist; fix the path in {path}")
    sources = config.sources
    if not (sources.sample or sources.billing or sources.inventory or sources.utilization):
        bad(f"sources: no billing, inventory or utilization named; add them to {path}")
    _checked(bad, good, "savings rules", lambda: _savings(config))
    _checked(bad, good, "routing and templates", lambda: _routing(config))
    _checked(bad, good, "database", lambda: _database(cli_state, config))
    _schedules(bad, good, cli_state, config)
    if config.jira is None:
        good("jira: not configured (recommendations are found and tracked, no tickets)")
    else:
        _checked(bad, good, "jira", lambda: _jira(config))
    return problems


def _checked(
    bad: Callable[[str], None], good: Callable[[str], None], what: str, check: Callable[[], str]
) -> None:
    try:
        good(f"{what}: {check()}")
    except ReclaimError as exc:
        bad(f"{what}: {exc}")
    except Exception as exc:  # a check reports whatever stopped it (a DNS error…) as one line
        bad(f"{what}: {type(exc).__name__}: {exc}")


def _savings(config: ReclaimConfig) -> str:
    from reclaim.recommend import load_pack

    rules = load_pack(config.rules.savings)
    return f"{len(rules.rules)} rule(s) from {config.rules.savings or 'the built-in pack'}"


def _routing(config: ReclaimConfig) -> str:
    from reclaim.tickets.routing import load_routing
    from reclaim.tickets.templates import load_templates

    load_routing(config.rules.routing, default_project=config.rules.default_project)
    load_templates(config.rules.templates)
    return f"{config.rules.routing or 'no routing file'}, " + (
        config.rules.templates or "built-in templates"
    )


def _database(cli_state: CliState, config: ReclaimConfig) -> str:
    from reclaim.database import redact_url
    from reclaim.store import create_engine, migration_status

    cli_state.config_database = config.database.resolve()
    url = cli_state.database_url
    engine = create_engine(url)
    try:
        status = migration_status(engine)
    finally:
        engine.dispose()
    if not status.up_to_date:
        raise ConfigError(
            f"{redact_url(url)} has {len(status.pending)} migration(s) pending",
            fix="run `reclaim db upgrade`",
        )
    return f"{redact_url(url)} reached, schema up to date"


def _schedules(
    bad: Callable[[str], None],
    good: Callable[[str], None],
    cli_state: CliState,
    config: ReclaimConfig,
) -> None:
    """One line per schedule: when it fires next, and whether the database has it yet."""
    from reclaim.durable import DurableEngine
    from reclaim.durable.schedule import next_tick
    from reclaim.service import ConfiguredSchedules, ScheduleChange

    if not config.schedules:
        good("schedules: none (the weekly loop runs only by hand, `reclaim run`)")
        return
    try:
        wanted = configured_schedules(config)
    except ReclaimError as exc:
        bad(f"schedules: {exc}")
        return
    planned: dict[str, ScheduleChange] | None
    try:
        planned = {
            change.name: change
            for change in ConfiguredSchedules(
                DurableEngine(cli_state.engine()), wanted, source=config_source(config)
            ).plan()
        }
    except Exception:  # the database line above already says what stops us reading it
        planned = None
    now = datetime.now(UTC)
    for schedule in wanted:
        change = None if planned is None else planned.get(schedule.name)
        if change is None:
            where = "not compared with the database (see the database line)"
        elif change.action == "unchanged":
            where = "installed"
        elif change.action == "added":
            where = "not installed yet: `reclaim serve` or `reclaim worker` installs it at start"
        else:
            where = (
                f"differs from the database ({change.detail}): the next `reclaim serve` or "
                "`reclaim worker` updates it"
            )
        good(
            f"schedule {schedule.name}: '{schedule.cron.expression}' {schedule.cron.timezone}, "
            f"next {next_tick(schedule.cron, now):%Y-%m-%d %H:%M} UTC; {where}"
        )
    for change in (planned or {}).values():
        if change.action == "removed":
            good(
                f"schedule {change.name}: installed from a configuration, no longer in this "
                "file: the next `reclaim serve` or `reclaim worker` removes it"
            )


def _jira(config: ReclaimConfig) -> str:
    from reclaim.tickets import connect

    jira = config.jira
    assert jira is not None
    with connect(jira.credentials(os.environ), requests_per_second=None) as client:
        info = client.server_info()
    kind = "cloud" if info.deployment_type.lower() == "cloud" else "datacenter"
    if kind != jira.flavor:
        raise ConfigError(
            f"{jira.url} is Jira {info.deployment_type}, but flavor is {jira.flavor}",
            fix=f"set jira.flavor: {kind}",
        )
    return f"{jira.url} reached: Jira {info.deployment_type} {info.version}"
