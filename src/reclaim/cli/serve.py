"""``reclaim serve`` (the API, webhook, metrics and scheduler) and ``reclaim tokens``."""

from __future__ import annotations

__all__ = ["serve", "tokens_app"]

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from reclaim.cli.config import ConfigOption, config_source, configured_schedules, load_cli_config
from reclaim.cli.context import console, err_console, state
from reclaim.cli.modules import import_modules
from reclaim.errors import ConfigError

if TYPE_CHECKING:
    from reclaim.config import ReclaimConfig
    from reclaim.service import TokenStore

tokens_app = typer.Typer(
    help="API tokens for reclaim serve: shown once, stored as hashes.", no_args_is_help=True
)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address to listen on (default: 127.0.0.1, or RECLAIM_HOST).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help="Port to listen on (default: 8000, or RECLAIM_PORT).",
            show_default=False,
        ),
    ] = None,
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            "-m",
            help="Import this module for its workflows (the scheduler starts only runs of "
            "workflows it knows); repeatable (default: reclaim.pipeline and reclaim.sync).",
            show_default=False,
        ),
    ] = None,
    schedules: Annotated[
        bool | None,
        typer.Option(
            "--schedules/--no-schedules",
            help="Fire due cron ticks from this process (default: on, or RECLAIM_SCHEDULES).",
            show_default=False,
        ),
    ] = None,
    schedule_interval: Annotated[
        float, typer.Option("--schedule-interval", min=0.1, help="Seconds between passes.")
    ] = 10.0,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="Savings rules used to explain recommendations (default: the built-in pack).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    config: ConfigOption = None,
) -> None:
    """Serve the JSON API, the Jira webhook, /metrics, /healthz, /readyz and the scheduler.

    With a reclaim.yaml (--config, $RECLAIM_CONFIG, ./reclaim.yaml), the scheduler installs
    its schedules of the weekly loop at start and removes those the file no longer names.
    Stop with SIGTERM or Ctrl-C: requests in flight finish, the scheduler stops, the process
    exits 0. The API needs a token from `reclaim tokens create NAME`.
    """
    from reclaim.service import ServiceSettings, create_app
    from reclaim.store import migration_status, redact_url

    settings = ServiceSettings.from_env(
        host=host,
        port=port,
        schedules=schedules,
        schedule_interval=schedule_interval,
        rules=rules,
        database_url=state(ctx).db_option,
        modules=tuple(module) if module else None,
    )
    import_modules(list(settings.modules))
    loaded = load_cli_config(state(ctx), config)
    wanted = configured_schedules(loaded) if loaded is not None and settings.schedules else None
    logging.basicConfig(
        level=logging.DEBUG if state(ctx).debug else getattr(logging, log_level.upper(), 20),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    engine = state(ctx).engine()
    status = migration_status(engine)
    if not status.up_to_date:
        err_console.print(
            f"[yellow]warning:[/] {redact_url(status.url)} lacks {len(status.pending)} "
            "migration(s): /readyz answers 503 until `reclaim db upgrade` runs",
            highlight=False,
        )
    app = create_app(
        settings,
        engine=engine,
        schedules=wanted,
        schedules_source=config_source(loaded) if loaded is not None else "",
    )
    err_console.print(
        f"reclaim serve on http://{settings.host}:{settings.port} "
        f"(database {redact_url(str(engine.url))}, schedules "
        f"{_schedules_text(settings.schedules, loaded)}, webhook "
        f"{'on' if settings.webhook_secret else 'off'})",
        highlight=False,
    )
    import uvicorn

    server_config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        lifespan="on",
        # The X-Forwarded-* headers of a reverse proxy are trusted only from these addresses.
        forwarded_allow_ips="127.0.0.1",
    )
    _server_class()(server_config).run()


def _schedules_text(enabled: bool, loaded: ReclaimConfig | None) -> str:
    if not enabled:
        return "off"
    if loaded is None:
        return "on"
    names = ", ".join(schedule.name for schedule in loaded.schedules) or "none"
    return f"on, from {config_source(loaded)}: {names}"


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn raises the signal again once it has stopped gracefully, so the process
            # would end "killed by SIGTERM"; a finished graceful stop is a success (exit 0).
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    return Server


def _store(ctx: typer.Context) -> TokenStore:
    from reclaim.service import TokenStore

    return TokenStore(state(ctx).engine())


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what uses the token, e.g. 'grafana'.")],
) -> None:
    """Make a token and print it once; only its hash is stored."""
    token = _store(ctx).create(name)
    err_console.print(
        f"token [bold]{name}[/] created; it is shown only now, keep it in a secret store:",
        highlight=False,
    )
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """Show the stored tokens (names and dates; the tokens themselves are not kept)."""
    table = Table("name", "id", "created", "revoked")
    for token in _store(ctx).all():
        table.add_row(
            token.name,
            token.id,
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "-",
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke(ctx: typer.Context, name: str) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    if not _store(ctx).revoke(name):
        raise ConfigError(f"no live token is named {name!r}", fix="see `reclaim tokens list`")
    console.print(f"revoked token {name}", highlight=False)


@tokens_app.command("hash")
def hash_command() -> None:
    """Make a token for configuration instead of the database: prints the token, then the hash
    to put in RECLAIM_API_TOKEN_HASHES (or reclaim.yaml)."""
    from reclaim.service.tokens import hash_token, new_token

    _, token = new_token()
    err_console.print("token (give it to the caller, once):", highlight=False)
    typer.echo(token)
    err_console.print("hash (configure it):", highlight=False)
    typer.echo(hash_token(token))
