"""``reclaim infra``: plan and apply Terraform/OpenTofu stacks over their dependency DAG."""

from __future__ import annotations

__all__ = ["app"]

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from reclaim.cli.context import console, err_console, state

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from reclaim.infra import InfraRun, Orchestrator

app = typer.Typer(
    help="Plan and apply Terraform/OpenTofu stacks over their dependency DAG, durably.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="reclaim-infra.yaml, or the folder that holds it.", show_default=True
    ),
]
SlotsOption = Annotated[
    int | None,
    typer.Option(help="Stacks run at once (default: 'parallelism' of the file).", min=1),
]
StacksArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Stacks to run (default: all).", show_default=False),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Do not stream Terraform's output.")
]

_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta")
_STATUS_STYLE = {
    "applied": "green",
    "planned": "cyan",
    "no_changes": "dim",
    "skipped": "dim",
    "needs_approval": "yellow",
    "denied": "bold red",
    "blocked": "red",
}


class GraphFormatChoice(enum.StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


class OutputsFormat(enum.StrEnum):
    table = "table"
    json = "json"
    tfvars = "tfvars"


def _engine(ctx: typer.Context) -> Engine:
    from reclaim.store import migration_status

    engine = state(ctx).engine()
    status = migration_status(engine)
    if not status.up_to_date:
        err_console.print(
            f"[yellow]{status.url} has {len(status.pending)} migration(s) pending[/]: "
            "run `reclaim db upgrade` first",
            highlight=False,
        )
        raise typer.Exit(code=2)
    return engine


def _orchestrator(ctx: typer.Context, config: Path, slots: int | None, quiet: bool) -> Orchestrator:
    from reclaim.infra import Orchestrator, load_config

    loaded = load_config(config)
    colors: dict[str, str] = {}

    def sink(stack: str, line: str) -> None:
        color = colors.setdefault(stack, _COLORS[len(colors) % len(_COLORS)])
        console.print(f"[{color}]{escape(stack)}[/] │ {escape(line)}", highlight=False)

    return Orchestrator(loaded, _engine(ctx), slots=slots, sink=None if quiet else sink)


def _report(run: InfraRun) -> None:
    table = Table(title=f"infra {run.mode} · run {run.run_id}", pad_edge=False)
    for column in ("stack", "status", "trigger", "outputs", "reason"):
        table.add_column(column)
    for stack in run.stacks:
        style = _STATUS_STYLE.get(stack.status, "")
        outputs = ""
        if stack.status == "applied":
            outputs = f"v{stack.output_version} " + ("changed" if stack.outputs_changed else "same")
        status = stack.status + (" (detected)" if stack.detected else "")
        table.add_row(
            escape(stack.stack),
            f"[{style}]{status}[/]" if style else status,
            stack.trigger or "",
            outputs,
            escape(stack.reason),
        )
    console.print(table)
    if run.global_version is not None:
        console.print(f"global outputs: version {run.global_version}", highlight=False)


def _finish(run: InfraRun) -> None:
    _report(run)
    if not run.ok:
        raise typer.Exit(code=1)


RunIdOption = Annotated[
    str | None, typer.Option(help="Id for the run; an unfinished run's id resumes it.")
]


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    stacks: StacksArgument = None,
    config: ConfigOption = Path("reclaim-infra.yaml"),
    slots: SlotsOption = None,
    run_id: RunIdOption = None,
    quiet: QuietOption = False,
) -> None:
    """Plan stacks and check each plan against the policies; nothing is applied."""
    orchestrator = _orchestrator(ctx, config, slots, quiet)
    _finish(orchestrator.run("plan", stacks or [], run_id=run_id))


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    stacks: StacksArgument = None,
    config: ConfigOption = Path("reclaim-infra.yaml"),
    slots: SlotsOption = None,
    run_id: RunIdOption = None,
    quiet: QuietOption = False,
) -> None:
    """Plan, check and apply stacks in dependency order; changed outputs trigger their readers."""
    orchestrator = _orchestrator(ctx, config, slots, quiet)
    _finish(orchestrator.run("apply", stacks or [], run_id=run_id))


@app.command("resume")
def resume_command(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run to resume.")],
    config: ConfigOption = Path("reclaim-infra.yaml"),
    slots: SlotsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Resume a crashed, failed or cancelled infra run where it stopped."""
    orchestrator = _orchestrator(ctx, config, slots, quiet)
    _finish(orchestrator.resume(run_id))


@app.command("graph")
def graph_command(
    config: ConfigOption = Path("reclaim-infra.yaml"),
    fmt: Annotated[
        GraphFormatChoice, typer.Option("--format", "-f", help="text, dot or mermaid.")
    ] = GraphFormatChoice.text,
) -> None:
    """Print the stacks' dependency DAG (declared and remote-state edges)."""
    from reclaim.infra import StackGraph, load_config

    graph = StackGraph(load_config(config))
    typer.echo(graph.render(fmt.value), nl=False)


@app.command("outputs")
def outputs_command(
    ctx: typer.Context,
    fmt: Annotated[
        OutputsFormat, typer.Option("--format", "-f", help="table, json or tfvars.")
    ] = OutputsFormat.table,
    version: Annotated[
        int | None, typer.Option(help="This version instead of the latest.", min=1)
    ] = None,
    history: Annotated[bool, typer.Option("--history", help="List every version.")] = False,
) -> None:
    """The global outputs: the global stacks' outputs as one versioned document."""
    from reclaim.infra import InfraStore

    versions = InfraStore(_engine(ctx)).global_versions()
    if history:
        table = Table(pad_edge=False)
        for column in ("version", "run", "created", "stacks"):
            table.add_column(column)
        for number, run, created, document in versions:
            table.add_row(str(number), run, f"{created:%Y-%m-%d %H:%M:%S}", ", ".join(document))
        console.print(table)
        return
    if not versions:
        err_console.print(
            "no global outputs yet: list stacks under 'global_outputs' and apply them"
        )
        raise typer.Exit(code=1)
    chosen = [v for v in versions if version is None or v[0] == version]
    if not chosen:
        err_console.print(f"no version {version}; the latest is {versions[-1][0]}")
        raise typer.Exit(code=1)
    number, _run, _created, document = chosen[-1]
    if fmt is OutputsFormat.json:
        typer.echo(json.dumps({"version": number, "stacks": document}, indent=2, sort_keys=True))
    elif fmt is OutputsFormat.tfvars:
        typer.echo(_tfvars(document), nl=False)
    else:
        table = Table(title=f"global outputs · version {number}", pad_edge=False)
        for column in ("stack", "output", "value"):
            table.add_column(column)
        for stack, outputs in document.items():
            for name, value in outputs.items():
                table.add_row(escape(stack), escape(name), escape(json.dumps(value)))
        console.print(table)


def _tfvars(document: dict[str, Any]) -> str:
    # A JSON object is a valid HCL object expression, so each stack becomes one variable.
    lines = []
    for stack, outputs in document.items():
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in stack)
        lines.append(f"{name} = {json.dumps(outputs, sort_keys=True)}")
    return "\n".join(lines) + "\n"


@app.command("drift")
def drift_command(
    ctx: typer.Context,
    stacks: StacksArgument = None,
    config: ConfigOption = Path("reclaim-infra.yaml"),
    slots: SlotsOption = None,
    quiet: QuietOption = True,
) -> None:
    """Plan stacks with -refresh-only: exit 2 when any real infrastructure drifted."""
    orchestrator = _orchestrator(ctx, config, slots, quiet)
    reports = orchestrator.drift(stacks or [])
    table = Table(title="drift", pad_edge=False)
    for column in ("stack", "drifted", "what"):
        table.add_column(column)
    for report in reports:
        table.add_row(
            escape(report.stack),
            "[bold red]yes[/]" if report.drifted else "[green]no[/]",
            escape(", ".join(report.resources)),
        )
    console.print(table)
    if any(report.drifted for report in reports):
        raise typer.Exit(code=2)
