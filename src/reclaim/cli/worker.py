"""``reclaim worker`` (claim and drive durable runs) and ``reclaim schedules`` (cron ticks)."""

from __future__ import annotations

__all__ = ["schedules_app", "worker"]

import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from reclaim.cli.config import ConfigOption, config_source, configured_schedules, load_cli_config
from reclaim.cli.context import console, err_console, state
from reclaim.cli.modules import import_modules
from reclaim.database import Backend, backend_of
from reclaim.durable import DurableEngine, ParallelExecutor, SequentialExecutor, registry
from reclaim.durable.schedule import CronExpression, Schedule, Scheduler, next_tick
from reclaim.durable.worker import Worker
from reclaim.errors import ConfigError

if TYPE_CHECKING:
    from reclaim.config import ReclaimConfig

schedules_app = typer.Typer(
    help="Cron schedules: each tick starts exactly one run.", no_args_is_help=True
)

ModuleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--module",
        "-m",
        help="Import this Python module first (it declares the workflows); repeatable.",
        show_default=False,
    ),
]


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Runs driven at once.")
    ] = 1,
    lease: Annotated[
        float,
        typer.Option("--lease", min=0.1, help="Lease in seconds; heartbeats every third of it."),
    ] = 30.0,
    module: ModuleOption = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.01, help="Seconds an idle slot waits between polls.")
    ] = 1.0,
    step_workers: Annotated[
        int,
        typer.Option("--step-workers", min=1, help="Steps of one run that may run at once."),
    ] = 1,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Exit once no run of its workflows is unfinished (a dead owner's lease is "
            "waited out and its run taken over).",
        ),
    ] = False,
    schedules: Annotated[
        bool,
        typer.Option(
            "--schedules/--no-schedules",
            help="Also fire due cron ticks (and install the schedules of reclaim.yaml at start).",
        ),
    ] = True,
    config: ConfigOption = None,
    distribute_items: Annotated[
        bool | None,
        typer.Option(
            "--distribute-items/--no-distribute-items",
            help="Queue map items so that idle workers share them "
            "(default: on for PostgreSQL, off for SQLite).",
            show_default=False,
        ),
    ] = None,
    item_concurrency: Annotated[
        int | None,
        typer.Option(
            "--item-concurrency",
            min=1,
            help="Map items of one step this process runs at once, whether it owns the run "
            "or helps (default: the concurrency the map step declares).",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve this worker's Prometheus metrics on this port (/metrics).",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port listens on.")
    ] = "0.0.0.0",  # noqa: S104  (a scrape comes from another machine)
    item_batch: Annotated[
        int | None,
        typer.Option(
            "--item-batch",
            min=0,
            help="At most this many map items per claim (and held beyond the running ones); "
            "0: never help other runs (default: twice the item concurrency).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a worker: claim durable runs and drive them, resuming what dead workers left.

    With a reclaim.yaml (--config, $RECLAIM_CONFIG, ./reclaim.yaml) and --schedules, its
    schedules of the weekly loop are installed at start (those it no longer names removed).
    Stop with SIGTERM or Ctrl-C: the steps in flight finish and their runs are handed back
    to other workers; a second signal hands them back at once.
    """
    import_modules(module)
    loaded = load_cli_config(state(ctx), config)
    if not registry.names():
        raise ConfigError(
            "no workflow is registered in this process, so this worker could run nothing",
            fix="pass --module with the module that declares your workflows",
        )
    logging.basicConfig(
        level=logging.DEBUG if state(ctx).debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    executor = SequentialExecutor() if step_workers == 1 else ParallelExecutor(step_workers)
    database = state(ctx).engine()
    if distribute_items is None:
        # Sharing items costs a second commit per item: worth it only across processes that
        # can really work at once, which SQLite's single writer does not allow.
        distribute_items = backend_of(database) is Backend.POSTGRESQL
    engine = DurableEngine(
        database,
        executor=executor,
        lease_seconds=lease,
        distribute_items=distribute_items,
        item_concurrency=item_concurrency,
        item_batch=item_batch or None,
    )
    if schedules and loaded is not None:
        _install_schedules(engine, loaded)
    runner = Worker(
        engine,
        concurrency=concurrency,
        poll_interval=poll,
        schedules=schedules,
        item_batch=item_batch,
    )
    runner.install_signal_handlers()
    if metrics_port is not None:
        _serve_metrics(runner, metrics_host, metrics_port)
    err_console.print(
        f"worker {runner.worker_id}: workflows {', '.join(registry.names())}", highlight=False
    )
    settle_collector()
    stats = runner.run(until_idle=until_idle)
    err_console.print(f"worker {runner.worker_id} stopped: {stats.as_dict()}", highlight=False)
    if runner.abandoned:
        # Abandoned steps may still run in their threads, and Python would wait for them at
        # exit; their runs are already handed back, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


# Net allocations of container objects between two young collections (Python's default 700).
WORKER_GC_THRESHOLD = 20_000


def settle_collector() -> None:
    """Tune the cyclic garbage collector for a long-running worker, once it is set up.

    What is imported and built by now lives as long as the process: out of the collector's
    reach, or every full collection walks it again (~120,000 objects, a third of a
    distributing worker's CPU; bench/service_bench.py workers). And the young generation is
    collected every 20,000 net allocations rather than 700: a map item holds tens of thousands
    of short-lived objects (rows, drafts, request bodies) that reference counting frees when
    the item ends, and at 700 the collector walked them a few hundred times per item and
    promoted them to older generations to be walked again, about a tenth of the worker's CPU
    during a distribution; at 20,000 it is under 2 %. The garbage cycles that wait longer for
    a collection are a few MB at most.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(WORKER_GC_THRESHOLD, middle, old)


def _install_schedules(engine: DurableEngine, loaded: ReclaimConfig) -> None:
    from reclaim.service import ConfiguredSchedules

    source = config_source(loaded)
    changes = ConfiguredSchedules(engine, configured_schedules(loaded), source=source).install()
    for change in changes:
        err_console.print(f"{change} (from {source})", highlight=False)


def _serve_metrics(runner: Worker, host: str, port: int) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    from reclaim.service import WorkerCollector

    registry = CollectorRegistry()
    registry.register(WorkerCollector(runner))
    # A daemon thread: it dies with the worker, after the work has been handed back.
    start_http_server(port, addr=host, registry=registry)
    err_console.print(
        f"worker {runner.worker_id}: metrics on http://{host}:{port}/metrics", highlight=False
    )


def _scheduler(ctx: typer.Context, modules: list[str] | None) -> Scheduler:
    import_modules(modules)
    return Scheduler(DurableEngine(state(ctx).engine()))


@schedules_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name for the schedule.")],
    cron: Annotated[str, typer.Option("--cron", help="Five cron fields, e.g. '0 6 * * MON'.")],
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="The workflow to start.")],
    input_json: Annotated[
        str, typer.Option("--input", help="The workflow input as JSON.")
    ] = "null",
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone.")] = "UTC",
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a same-named one.")] = False,
    module: ModuleOption = None,
) -> None:
    """Add a schedule; its first tick is the first one after now."""
    try:
        value: Any = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--input is not JSON: {exc.msg} at column {exc.colno}",
            fix='quote it for your shell, e.g. --input \'{"week": "2026-W48"}\'',
        ) from exc
    schedule = Schedule(
        name=name, cron=CronExpression(cron, timezone), workflow=workflow, input=value
    )
    scheduler = _scheduler(ctx, module)
    stored = scheduler.add(schedule, replace=replace)
    if replace:
        from reclaim.service import forget_configured

        if forget_configured(scheduler.store.engine, name):
            err_console.print(
                f"[yellow]note:[/] {name} was installed from reclaim.yaml; it is yours now, "
                "until a reclaim.yaml naming it is installed again",
                highlight=False,
            )
    after = stored.last_tick_at or stored.created_at
    assert after is not None
    console.print(
        f"schedule [bold]{name}[/]: {workflow} at '{cron}' ({timezone}); "
        f"next tick {next_tick(stored.cron, after):%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )


@schedules_app.command("list")
def list_schedules(
    ctx: typer.Context,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column on one line, whatever the terminal.")
    ] = False,
) -> None:
    """Show every schedule with its last and next tick, and where it comes from."""
    from reclaim.service import configured_origins

    scheduler = _scheduler(ctx, None)
    found = scheduler.all()
    if not found:
        console.print(
            "no schedules: add one with `reclaim schedules add`, or name them in reclaim.yaml "
            "(`reclaim serve` and `reclaim worker` install them at start)",
            style="dim",
        )
        return
    origins = configured_origins(scheduler.store.engine)
    table = Table(box=None, pad_edge=False)
    # At 80 columns the workflow and last run give way, times lose their year and a paused
    # schedule says so in place of its next tick; a name is what people type into
    # `schedules pause`, so it is never cut or wrapped.
    columns = ["name", "cron", "zone", "next", "last tick", "from"]
    if wide:
        columns[3:3] = ["workflow", "state"]
        columns.insert(7, "last run")
    for column in columns:
        table.add_column(column, no_wrap=wide or column != "from")
    when = "%Y-%m-%d %H:%M" if wide else "%m-%d %H:%M"
    for item in found:
        after = item.last_tick_at or item.created_at
        assert after is not None
        origin = origins.get(item.name)
        upcoming = f"{next_tick(item.cron, after):{when}}"
        cells = {
            "name": item.name,
            "cron": item.cron.expression,
            "zone": item.cron.timezone,
            "workflow": item.workflow,
            "state": "on" if item.enabled else "paused",
            "next": upcoming if item.enabled or wide else "paused",
            "last tick": f"{item.last_tick_at:{when}}" if item.last_tick_at else "-",
            "last run": item.last_run_id or "-",
            "from": (origin if wide else Path(origin).name) if origin else "by hand",
        }
        table.add_row(*(cells[column] for column in columns))
    if wide:
        # A console as wide as the table needs: lines longer than the terminal, never cut.
        Console(width=max(console.width, 250), emoji=False).print(table, highlight=False)
    else:
        console.print(table, highlight=False)
    console.print("times in UTC", style="dim")


@schedules_app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Delete a schedule (runs it started are kept)."""
    from reclaim.service import configured_origins

    scheduler = _scheduler(ctx, None)
    origin = configured_origins(scheduler.store.engine).get(name)
    if not scheduler.remove(name):
        raise ConfigError(f"no schedule is named {name!r}", fix="see `reclaim schedules list`")
    console.print(f"removed schedule {name}", highlight=False)
    if origin is not None:
        err_console.print(
            f"[yellow]note:[/] {name} comes from {origin}: the next `reclaim serve` or "
            "`reclaim worker` reading that file installs it again; remove it from the file "
            "to remove it for good (or pause it: `reclaim schedules pause`)",
            highlight=False,
        )


@schedules_app.command("pause")
def pause(ctx: typer.Context, name: str) -> None:
    """Stop firing a schedule until it is resumed."""
    _scheduler(ctx, None).set_enabled(name, False)
    console.print(f"paused schedule {name}", highlight=False)


@schedules_app.command("resume")
def resume(ctx: typer.Context, name: str) -> None:
    """Fire a paused schedule again (ticks missed meanwhile collapse into the latest one)."""
    _scheduler(ctx, None).set_enabled(name, True)
    console.print(f"resumed schedule {name}", highlight=False)


@schedules_app.command("tick")
def tick(ctx: typer.Context, module: ModuleOption = None) -> None:
    """Fire every due tick once, without running anything (workers pick the runs up)."""
    fired = _scheduler(ctx, module).tick()
    for item in fired:
        verb = "started" if item.created else "already had"
        console.print(
            f"{item.schedule} @ {item.tick:%Y-%m-%d %H:%M} UTC: {verb} run {item.run_id}",
            highlight=False,
        )
    if not fired:
        console.print("no schedule is due", highlight=False)
