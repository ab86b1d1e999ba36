"""``reclaim runs``: list, inspect, resume and cancel durable workflow runs."""

from __future__ import annotations

__all__ = ["app"]

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from reclaim.cli.context import console, state
from reclaim.cli.modules import import_modules
from reclaim.durable import (
    DurableEngine,
    ParallelExecutor,
    RunRecord,
    RunStatus,
    SequentialExecutor,
    StepRecord,
    StepStatus,
)
from reclaim.durable.schema import runs as runs_table
from reclaim.errors import ConfigError

app = typer.Typer(help="Inspect and operate durable workflow runs.", no_args_is_help=True)

_STATUS_STYLE = {
    RunStatus.PENDING: "cyan",
    RunStatus.RUNNING: "blue",
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.DEAD: "bold red",
}

ModuleOption = Annotated[
    list[str] | None,
    typer.Option(
        "--module",
        "-m",
        help="Import this module first so its workflows are registered (repeatable).",
    ),
]


def _engine(
    ctx: typer.Context, *, parallel: int = 1, item_concurrency: int | None = None
) -> DurableEngine:
    engine: Engine = state(ctx).engine()
    if not sa.inspect(engine).has_table(runs_table.name):
        raise ConfigError(
            "this database has no durable run tables",
            fix="run `reclaim db upgrade` first",
        )
    executor = SequentialExecutor() if parallel <= 1 else ParallelExecutor(max_workers=parallel)
    return DurableEngine(engine, executor=executor, item_concurrency=item_concurrency)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _status(status: RunStatus) -> str:
    return f"[{_STATUS_STYLE[status]}]{status.value}[/]"


def _first_line(text: str | None, width: int = 80) -> str:
    line = (text or "").strip().splitlines()[0] if text and text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@app.command("list")
def list_command(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    status: Annotated[
        list[RunStatus] | None, typer.Option(help="Only runs in this status (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 50,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column on one line, whatever the terminal.")
    ] = False,
) -> None:
    """List runs, newest first."""
    found = _engine(ctx).list_runs(workflow=workflow, statuses=status, limit=limit)
    if not found:
        console.print("no runs", style="dim")
        return
    table = Table(box=None, pad_edge=False)
    # A run id is what people copy into `runs show/resume`: it is never cut or wrapped. At 80
    # columns the version, claims and error columns give way (errors follow the table).
    columns = ["run", "workflow", "status", "created", "took"]
    if wide:
        columns[2:2] = ["version"]
        columns.insert(4, "claims")
    for column in columns:
        table.add_column(column, no_wrap=wide or column in ("run", "status", "created", "took"))
    if wide:
        table.add_column("error", no_wrap=True)
    errors: list[tuple[str, str]] = []
    for run in found:
        cells = {
            "run": run.id,
            "workflow": run.workflow,
            "version": run.version,
            "status": _status(run.status),
            "claims": str(run.attempts),
            "created": _when(run.created_at) if wide else _short_when(run.created_at),
            "took": _seconds(run.started_at, run.finished_at),
        }
        row = [cells[column] for column in columns]
        if wide:
            row.append(_first_line(run.error, 60))
        elif run.error:
            errors.append((run.id, _first_line(run.error, 200)))
        table.add_row(*row)
    if wide:
        # A console as wide as the table needs: lines longer than the terminal, never cut.
        Console(width=max(console.width, 250), emoji=False).print(table, highlight=False)
    else:
        console.print(table, highlight=False)
    for run_id, error in errors:
        console.print(f"[red]{run_id}[/]: {error}", highlight=False, soft_wrap=True)


def _short_when(moment: datetime | None) -> str:
    return moment.strftime("%m-%d %H:%M") if moment is not None else "-"


@app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    items: Annotated[
        bool, typer.Option("--items", help="List every map item, not only a summary.")
    ] = False,
) -> None:
    """Show a run and its steps with their timings."""
    engine = _engine(ctx)
    run = engine.get_run(run_id)
    _print_run(run)
    _print_steps(engine.steps(run_id), items=items)


def _print_run(run: RunRecord) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("run", run.id)
    table.add_row("workflow", f"{run.workflow} (version {run.version})")
    table.add_row("status", _status(run.status))
    table.add_row("claims", f"{run.attempts} of at most {run.max_attempts}")
    if run.owner:
        table.add_row("owner", f"{run.owner} (lease until {_when(run.lease_expires_at)} UTC)")
    table.add_row("created", f"{_when(run.created_at)} UTC")
    if run.started_at:
        table.add_row("started", f"{_when(run.started_at)} UTC")
    if run.finished_at:
        table.add_row(
            "finished",
            f"{_when(run.finished_at)} UTC ({_seconds(run.started_at, run.finished_at)})",
        )
    if run.error:
        table.add_row("error", f"[red]{run.error}[/]")
    console.print(table, highlight=False)


def _print_steps(records: list[StepRecord], *, items: bool) -> None:
    if not records:
        console.print("no step has finished yet", style="dim")
        return
    by_step: dict[str, list[StepRecord]] = {}
    for record in records:
        by_step.setdefault(record.step, []).append(record)
    table = Table(box=None, pad_edge=False)
    for column in ("step", "item", "status", "attempts", "started", "took"):
        table.add_column(column, no_wrap=True)
    table.add_column("error")
    for step, rows in by_step.items():
        plain = [row for row in rows if not row.item_key]
        keyed = [row for row in rows if row.item_key]
        for row in plain:
            table.add_row(
                step,
                f"{len(keyed)} item(s)" if keyed else "",
                row.status.value,
                str(row.attempts),
                _when(row.started_at),
                _seconds(row.started_at, row.finished_at),
                _first_line(row.error),
            )
        if keyed and (items or not plain):
            for row in keyed:
                table.add_row(
                    step,
                    row.item_key,
                    row.status.value,
                    str(row.attempts),
                    _when(row.started_at),
                    _seconds(row.started_at, row.finished_at),
                    _first_line(row.error),
                )
        elif keyed:
            counts: dict[str, int] = {}
            for row in keyed:
                counts[row.status.value] = counts.get(row.status.value, 0) + 1
            failed = [row for row in keyed if row.status is StepStatus.FAILED]
            table.add_row(
                "",
                ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
                "",
                "",
                "",
                "",
                _first_line(failed[0].error) if failed else "",
            )
    console.print(table, highlight=False)


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    module: ModuleOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Take the run over even though another owner's lease is still live."
        ),
    ] = False,
    parallel: Annotated[
        int, typer.Option(help="Run up to this many ready steps at once (1: sequential).")
    ] = 1,
    item_concurrency: Annotated[
        int | None,
        typer.Option(
            "--item-concurrency",
            min=1,
            help="Map items this process runs at once [default: the map step's concurrency].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run again what did not finish: finished steps are never re-run."""
    import_modules(module)
    engine = _engine(ctx, parallel=parallel, item_concurrency=item_concurrency)
    engine.resume(run_id, force=force)
    run = engine.get_run(run_id)
    console.print(
        f"run {run.id} {_status(run.status)} "
        f"({_seconds(run.started_at, run.finished_at)} in total)",
        highlight=False,
    )


@app.command("cancel")
def cancel_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
) -> None:
    """Cancel a pending or running run; it stops at its next step boundary."""
    engine = _engine(ctx)
    if engine.cancel(run_id):
        console.print(f"run {run_id} [yellow]cancelled[/]", highlight=False)
    else:
        run = engine.get_run(run_id)
        console.print(f"run {run_id} had already finished: {_status(run.status)}", highlight=False)
