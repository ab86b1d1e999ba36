"""``reclaim policy``: check Terraform/OpenTofu plans against policies, and test the policies."""

from __future__ import annotations

__all__ = ["app"]

import datetime
import enum
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from reclaim.cli.context import console, err_console
from reclaim.errors import ConfigError
from reclaim.rules import RuleFileError

if TYPE_CHECKING:
    from reclaim.policy import Report

# reclaim.policy is imported inside the commands: every other command starts without it.

app = typer.Typer(
    help="Check Terraform/OpenTofu plans against policies in CI, and test the policies.",
    no_args_is_help=True,
)


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    markdown = "markdown"


@contextmanager
def _reporting_errors() -> Iterator[None]:
    """Print every error of the policy files (not only the first) and exit with 2."""
    try:
        yield
    except RuleFileError as exc:
        for error in exc.errors:
            err_console.print(
                f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
            )
        raise typer.Exit(2) from exc


_STYLE = {"deny": "bold red", "warn": "yellow", "info": "cyan"}


def _print_table(report: Report, *, explain: bool) -> None:
    if report.findings:
        table = Table(show_lines=False, pad_edge=False, expand=False)
        table.add_column("effect", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("resource", overflow="fold")
        table.add_column("message", overflow="fold")
        for finding in report.findings:
            effect = f"[{_STYLE[finding.effect]}]{finding.effect}[/]"
            if finding.excepted is not None:
                effect = f"[dim strike]{finding.effect}[/] [dim]excepted[/]"
            text = escape(finding.message)
            if finding.remediation:
                text += f"\n[dim]fix: {escape(finding.remediation)}[/]"
            if finding.note:
                text += f"\n[yellow]note: {escape(finding.note)}[/]"
            table.add_row(effect, finding.rule_id, escape(finding.address), text)
        console.print(table)
    if explain:
        for finding in report.findings:
            console.print(f"\n[bold]{finding.rule_id}[/] on {escape(finding.address)}")
            console.print(escape(finding.explanation.render()), highlight=False)
    deny, warn, info = (report.count(effect) for effect in ("deny", "warn", "info"))
    excepted = sum(1 for finding in report.findings if finding.excepted is not None)
    verdict = "[bold red]FAIL[/]" if report.failed else "[bold green]PASS[/]"
    cost = report.monthly_cost_delta
    console.print(
        f"{verdict} {escape(report.source)}: {deny} deny, {warn} warn, {info} info"
        + (f", {excepted} excepted" if excepted else "")
        + f" ({report.resources} resources"
        + (f", monthly cost {cost:+,.2f} USD" if cost is not None else "")
        + ")",
        highlight=False,
    )


@app.command("check")
def check_command(
    plan: Annotated[
        Path | None,
        typer.Argument(
            help="Output of 'terraform show -json PLANFILE' (or 'tofu show -json PLANFILE').",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Check what is deployed instead: output of 'terraform show -json' of a state.",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            "-r",
            help="A policy file or folder (repeatable). Default: the built-in pack.",
            show_default=False,
        ),
    ] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin", help="Also apply the built-in pack with --rules.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to write the findings.")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the findings to this file.", show_default=False),
    ] = None,
    warn_only: Annotated[
        bool, typer.Option("--warn-only", help="Report denies, but never fail the build.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show why each rule fired (table format).")
    ] = False,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices", help="A price table CSV instead of the pack's.", show_default=False
        ),
    ] = None,
    now: Annotated[
        datetime.datetime | None,
        typer.Option("--now", help="The date rules and exception expiries see (default: now)."),
    ] = None,
) -> None:
    """Check a plan (or a state) against policies. Exit 0 clean, 1 on a deny, 2 on bad input."""
    from reclaim.policy import builtin_pack_path, check_plan, load_plan, load_policies, load_prices
    from reclaim.policy.formats import render

    if (plan is None) == (state is None):
        raise ConfigError(
            "give a plan file or --state FILE (one of them)",
            fix="run 'reclaim policy check plan.json' with the output of "
            "'terraform show -json PLANFILE'",
        )
    with _reporting_errors():
        paths = list(rules or [])
        if not paths or builtin:
            paths.append(builtin_pack_path())
        policies = load_policies(paths)
    if plan is not None:
        loaded = load_plan(plan, expect="plan")
    else:
        assert state is not None
        loaded = load_plan(state, expect="state")
    moment = None
    if now is not None:
        moment = now if now.tzinfo else now.replace(tzinfo=datetime.UTC)
    report = check_plan(loaded, policies, prices=load_prices(prices), now=moment)
    if output_format is OutputFormat.table:
        if output is not None:
            raise ConfigError(
                "--output needs a file format", fix="add --format json|sarif|junit|markdown"
            )
        _print_table(report, explain=explain)
    else:
        text = render(report, output_format.value)
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, "utf-8")
            _print_table(report, explain=False)
    raise typer.Exit(report.exit_code(warn_only=warn_only))


@app.command("test")
def run_tests_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Folders or files of policies and their tests.")
    ],
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List passing tests too.")
    ] = False,
) -> None:
    """Run policy tests (plan fragments with expected verdicts, and fact tests), like 'opa test'."""
    from reclaim.policy.testing import run_policy_tests

    report = run_policy_tests(paths)
    for error in report.errors:
        err_console.print(
            f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )
    for result in report.results:
        if verbose or not result.passed:
            console.print(escape(result.render()), highlight=False)
    console.print(report.summary(), highlight=False)
    if report.errors:
        raise typer.Exit(2)
    raise typer.Exit(0 if report.passed else 1)


@app.command("pack")
def pack_command(
    destination: Annotated[Path, typer.Argument(help="An empty or new folder.")],
) -> None:
    """Copy the built-in pack (policies, tests, price table) to a folder, to adapt it."""
    from reclaim.policy import builtin_pack_path

    if destination.exists() and any(destination.iterdir()):
        raise ConfigError(
            f"{destination} is not empty",
            fix="give a new or empty folder, so nothing is overwritten",
        )
    destination.mkdir(parents=True, exist_ok=True)
    source = builtin_pack_path()
    for item in sorted(source.iterdir()):
        if item.suffix in (".yaml", ".csv"):
            shutil.copyfile(item, destination / item.name)
            console.print(f"wrote {escape(str(destination / item.name))}", highlight=False)
