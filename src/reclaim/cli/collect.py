"""``reclaim collect`` (files or AWS into a stored fact collection) and ``reclaim sample``."""

from __future__ import annotations

__all__ = ["app", "sample_app"]

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from reclaim.cli.context import console, err_console, state
from reclaim.errors import ConfigError
from reclaim.ingest import (
    CollectReport,
    StoredCollection,
    bundled_sample,
    collect_facts,
    collect_into,
    generate_sample,
    imported_files,
    latest_collection,
    list_collections,
    load_facts,
    write_facts_parquet,
)

app = typer.Typer(
    help="Collect billing, inventory and utilization into per-resource facts.",
    no_args_is_help=True,
)
sample_app = typer.Typer(help="Synthetic sample data to try reclaim on.", no_args_is_help=True)

PathsOption = Annotated[list[Path] | None, typer.Option(show_default=False)]


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"--as-of {value!r} is not a date or time", fix="use ISO 8601, e.g. 2026-11-01"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("files")
def collect_files_command(
    ctx: typer.Context,
    billing: Annotated[
        list[Path] | None,
        typer.Option("--billing", "-b", help="FOCUS export: CSV, .csv.gz or Parquet file/folder."),
    ] = None,
    inventory: Annotated[
        list[Path] | None,
        typer.Option("--inventory", "-i", help="Inventory file or folder (CSV, JSON, Parquet)."),
    ] = None,
    utilization: Annotated[
        list[Path] | None,
        typer.Option("--utilization", "-u", help="Metric samples file or folder."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the 30-day window (default: end of the data)."),
    ] = None,
    window_days: Annotated[
        int, typer.Option("--window-days", min=1, help="Utilization window in days.")
    ] = 30,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the facts table to this Parquet file.")
    ] = None,
    no_db: Annotated[
        bool, typer.Option("--no-db", help="Do not store the collection; use with --out.")
    ] = False,
) -> None:
    """Read files into facts and store them as a new collection (same files: nothing added)."""
    end = _as_of(as_of)
    with console.status("collecting…") as status:

        def progress(message: str) -> None:
            status.update(f"{escape(message)}…")

        if no_db:
            if out is None:
                raise ConfigError("--no-db needs --out", fix="say where to write the facts")
            collection = collect_facts(
                billing or (),
                inventory or (),
                utilization or (),
                as_of=end,
                window_days=window_days,
                progress=progress,
            )
            write_facts_parquet(collection.facts, out)
            _print_report(collection.report)
            console.print(f"wrote {collection.facts.height:,} resources to {out}")
            return
        stored, report = collect_into(
            state(ctx).engine(),
            billing or (),
            inventory or (),
            utilization or (),
            as_of=end,
            window_days=window_days,
            progress=progress,
        )
    if report is not None:
        _print_report(report)
    _print_stored(stored)
    if out is not None:
        write_facts_parquet(load_facts(state(ctx).engine(), stored.id), out)
        console.print(f"wrote the facts to {out}")


@app.command("sample")
def collect_sample_command(ctx: typer.Context) -> None:
    """Collect the small sample shipped with reclaim (120 resources with every kind of waste)."""
    files = bundled_sample()
    with console.status("collecting the bundled sample…") as status:
        stored, report = collect_into(
            state(ctx).engine(),
            [files.billing],
            [files.inventory],
            [files.utilization],
            progress=lambda message: status.update(f"{escape(message)}…"),
        )
    if report is not None:
        _print_report(report)
    _print_stored(stored)


@app.command("aws")
def collect_aws_command(
    ctx: typer.Context,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", "-r", help="Region to read (repeatable; default: the profile's)."),
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=63, help="Days of CloudWatch metrics.")
    ] = 14,
    billing: Annotated[
        list[Path] | None,
        typer.Option("--billing", "-b", help="FOCUS export files or folders for the costs."),
    ] = None,
) -> None:
    """Read EC2, EBS, snapshots, Elastic IPs, load balancers, RDS, S3 and CloudWatch with your
    AWS credentials (read-only calls), and costs from a FOCUS export if given."""
    import boto3

    from reclaim.ingest import collect_aws, save_collection

    session = boto3.Session(profile_name=profile)
    regions = region or [session.region_name or "us-east-1"]
    with console.status("reading AWS…") as status:
        collection = collect_aws(
            session,
            regions=regions,
            days=days,
            billing=billing or (),
            progress=lambda message: status.update(f"{escape(message)}…"),
        )
        stored = save_collection(state(ctx).engine(), collection, source="aws")
    _print_report(collection.report)
    _print_stored(stored)


@app.command("list")
def list_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
) -> None:
    """Show the stored fact collections, newest first; * marks the one recommend reads."""
    engine = state(ctx).engine()
    collections = list_collections(engine, limit=limit)
    if not collections:
        console.print("no collections yet: run `reclaim collect files …`")
        return
    current = latest_collection(engine)
    table = Table(
        "id",
        "created",
        "source",
        "as of",
        "resources",
        "rows read",
        "bad rows",
        "superseded",
        "unattributed",
    )
    for item in collections:
        marker = "*" if current is not None and current.id == item.id else ""
        table.add_row(
            f"{item.id}{marker}",
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            item.source,
            item.as_of.strftime("%Y-%m-%d %H:%M") if item.as_of else "",
            f"{item.resources:,}",
            f"{item.rows_read:,}",
            f"{item.bad_rows:,}",
            f"{sum(f.get('superseded') or 0 for f in item.summary.get('files', [])):,}",
            f"{float(item.summary.get('unattributed_cost') or 0.0):,.2f}",
        )
    console.print(table)
    console.print(
        "* the collection `reclaim recommend` reads by default (the one collected last); "
        "`reclaim collect show ID` shows what it read",
        highlight=False,
    )


@app.command("show")
def show_command(
    ctx: typer.Context,
    collection: Annotated[
        int | None, typer.Argument(help="Collection id (default: the one collected last).")
    ] = None,
) -> None:
    """Show what a stored collection read: files, bad rows, superseded runs, unattributed cost."""
    engine = state(ctx).engine()
    item = (
        latest_collection(engine)
        if collection is None
        else next((c for c in list_collections(engine, limit=None) if c.id == collection), None)
    )
    if item is None:
        raise ConfigError(
            "no such collection" if collection is not None else "no collections yet",
            fix="see `reclaim collect list`",
        )
    _print_stored(item)
    summary = item.summary
    table = Table("file", "kind", "rows", "bad", "notes", title=f"collection {item.id} read")
    for entry in summary.get("files", []):
        table.add_row(
            escape(str(entry.get("path"))),
            str(entry.get("kind")),
            f"{int(entry.get('rows') or 0):,}",
            f"{int(entry.get('bad_rows') or 0):,}",
            escape(
                _note(
                    entry.get("duplicate_of"),
                    int(entry.get("warnings") or 0),
                    int(entry.get("superseded") or 0),
                    entry.get("superseded_by"),
                )
            ),
        )
    console.print(table)
    samples = summary.get("bad_row_samples", [])
    if samples:
        console.print(f"{item.bad_rows:,} bad row(s); the first {len(samples)} stored:")
        for sample in samples:
            what = "skipped" if sample.get("dropped", True) else "kept"
            console.print(
                f"  {escape(str(sample['path']))}: row {sample['row']}: "
                f"{escape(str(sample['reason']))} ({what})",
                highlight=False,
            )
    console.print(
        "cost without a resource id (tax, support, credits): "
        f"{float(summary.get('unattributed_cost') or 0.0):,.2f}",
        highlight=False,
    )


def _note(duplicate_of: str | None, warnings: int, superseded: int, by: str | None) -> str:
    notes = []
    if duplicate_of:
        notes.append(f"same content as {duplicate_of}")
    if warnings:
        notes.append(f"{warnings} warning(s)")
    if superseded:
        notes.append(f"{superseded:,} row(s) restated by the later run in {by}")
    return "; ".join(notes)


@app.command("ledger")
def ledger_command(ctx: typer.Context) -> None:
    """Show every distinct input file ever collected (by content hash)."""
    files = imported_files(state(ctx).engine())
    table = Table("sha256", "kind", "path", "rows", "bad rows", "collection", "imported")
    for item in files:
        table.add_row(
            item.sha256[:12],
            item.kind,
            escape(item.path),
            f"{item.rows:,}",
            f"{item.bad_rows:,}",
            str(item.collection_id or ""),
            item.imported_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _print_report(report: CollectReport) -> None:
    table = Table("file", "kind", "rows", "bad", "notes", title="read")
    for item in report.files:
        note = _note(item.duplicate_of, item.warnings, item.superseded, item.superseded_by)
        table.add_row(
            escape(item.path), item.kind, f"{item.rows:,}", f"{item.bad_rows:,}", escape(note)
        )
    console.print(table)
    samples = report.samples()
    if samples:
        err_console.print(
            f"[yellow]{report.bad_rows:,} bad row(s) skipped, {report.warnings:,} kept with a "
            "warning[/]; the first:",
            highlight=False,
        )
        for sample in samples[:10]:
            err_console.print(f"  {escape(str(sample))}", highlight=False)
    if report.unattributed_cost:
        console.print(
            f"cost without a resource id (tax, support, credits): {report.unattributed_cost:,.2f}",
            highlight=False,
        )


def _print_stored(stored: StoredCollection) -> None:
    if stored.new:
        console.print(
            f"[green]collection {stored.id}[/]: {stored.resources:,} resources "
            f"as of {stored.as_of:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )
    else:
        console.print(
            f"nothing new: these inputs are collection {stored.id} "
            f"({stored.resources:,} resources, collected {stored.created_at:%Y-%m-%d %H:%M})",
            highlight=False,
        )


@sample_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    resources: Annotated[int, typer.Option("--resources", "-n", min=1)] = 200,
    days: Annotated[int, typer.Option("--days", "-d", min=1)] = 45,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    table_format: Annotated[
        str, typer.Option("--format", help="csv or parquet for inventory and utilization.")
    ] = "csv",
) -> None:
    """Write FOCUS Parquet, an inventory and utilization with a seeded mix of waste."""
    with console.status("generating…") as status:
        files = generate_sample(
            out,
            resources=resources,
            days=days,
            seed=seed,
            table_format=table_format,
            progress=lambda message: status.update(f"{escape(message)}…"),
        )
    console.print(
        f"wrote {files.billing_rows:,} billing rows for {files.resources:,} resources:\n"
        f"  billing      {files.billing}\n  inventory    {files.inventory}\n"
        f"  utilization  {files.utilization}\n"
        f"next: reclaim collect files -b {files.billing} -i {files.inventory} "
        f"-u {files.utilization}",
        highlight=False,
    )
