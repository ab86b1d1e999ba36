"""``reclaim rules``: check, evaluate, explain and test rule files, and print the vocabulary."""

from __future__ import annotations

__all__ = ["app"]

import datetime
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from reclaim.cli.context import console, err_console
from reclaim.cli.modules import import_modules
from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules.errors import RuleFileError
from reclaim.rules.expression.display import plain_value
from reclaim.rules.loader import check_rule_files, load_rules
from reclaim.rules.testing import find_rule_tests, load_rule_tests

if TYPE_CHECKING:
    import polars as pl
    from rich.tree import Tree

    from reclaim.rules import RuleSet, RuleTestReport
    from reclaim.rules.expression import ExplainNode

# What only the other commands use is imported by them: Rich's tables and trees, the JUnit
# and SARIF writers (ElementTree), the fact readers, and the schema printer (which imports
# pydantic). ``reclaim rules check`` needs none of it (issue 9, item 13).

app = typer.Typer(
    help="Check, evaluate, explain and test YAML rule files.",
    no_args_is_help=True,
)

ImportOption = Annotated[
    list[str] | None,
    typer.Option(
        "--import",
        "-i",
        help="Import this Python module first, so the actions and constants it registers "
        "exist (repeatable).",
        show_default=False,
    ),
]
NowOption = Annotated[
    datetime.datetime | None,
    typer.Option("--now", help="The time the rules see as now (default: the real time)."),
]


def _import_modules(modules: Sequence[str] | None) -> None:
    import_modules(modules, kind="module")


def _print_errors(errors: Sequence[ConfigError]) -> None:
    for error in errors:
        err_console.print(
            f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )


@contextmanager
def _reporting_rule_errors() -> Iterator[None]:
    """Print every error of a rule file (not only the first line) and exit with 2."""
    try:
        yield
    except RuleFileError as exc:
        _print_errors(exc.errors)
        raise typer.Exit(code=2) from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(plain_value(value), default=_json_default, ensure_ascii=False)


@app.command("check")
def check_command(
    paths: Annotated[list[Path], typer.Argument(help="Rule files or folders of them.")],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the result as JSON (for CI annotations, editors)."),
    ] = False,
    imports: ImportOption = None,
) -> None:
    """Check rule files (and the rule tests beside them) without running anything."""
    _import_modules(imports)
    missing = [path for path in paths if not path.exists()]
    errors: list[ConfigError] = [
        ConfigError("no such file or folder", location=SourceLocation(str(path)), fix="check it")
        for path in missing
    ]
    rulesets, found = check_rule_files([path for path in paths if path.exists()])
    errors.extend(found)
    # Rule tests beside the rules are part of the rule set: check that they load too.
    seen = {str(error) for error in errors}
    for test_file in find_rule_tests(paths):
        try:
            load_rule_tests(test_file)
        except RuleFileError as exc:
            fresh = [error for error in exc.errors if str(error) not in seen]
            seen.update(str(error) for error in fresh)
            errors.extend(fresh)
    if as_json:
        sys.stdout.write(
            _dumps(
                {
                    "ok": [
                        {"path": r.path, "rules": len(r.rules), "kind": r.kind, "mode": r.mode}
                        for r in rulesets
                    ],
                    "errors": [_error_dict(error) for error in errors],
                }
            )
            + "\n"
        )
        if errors or not rulesets:
            raise typer.Exit(code=2)
        return
    for ruleset in rulesets:
        console.print(
            f"[green]ok[/] {escape(ruleset.path or ruleset.name)}: {len(ruleset.rules)} rule(s) "
            f"(kind {ruleset.kind}, mode {ruleset.mode})",
            highlight=False,
            soft_wrap=True,
        )
    if errors:
        _print_errors(errors)
        err_console.print(f"{len(errors)} error(s)", style="red")
        raise typer.Exit(code=2)
    if not rulesets:
        err_console.print("no rule files found", style="yellow")
        raise typer.Exit(code=2)


def _error_dict(error: ConfigError) -> dict[str, Any]:
    location = error.location
    return {
        "path": location.path if location else None,
        "line": location.line if location else None,
        "column": location.column if location else None,
        "error": type(error).__name__,
        "message": error.message,
        "fix": error.fix,
    }


def _read_facts(path: Path, ruleset: RuleSet) -> pl.DataFrame:
    import polars as pl  # here: only commands that read a table of facts load Polars

    from reclaim.rules.facts import parse_declared_datetimes

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, try_parse_dates=True)
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".json", ".jsonl", ".ndjson"):
            text = path.read_text(encoding="utf-8")
            if text.lstrip().startswith("["):
                records = json.loads(text)
            else:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ConfigError(
                    "the facts must be JSON objects (mappings of fields)",
                    location=SourceLocation(str(path)),
                    fix='write a list such as [{"cpu_avg": 3}], or one object per line',
                )
            # JSON has no datetimes: parse ISO 8601 text where the rules declare one.
            records = [
                parse_declared_datetimes(ruleset.schema, record, where=f"{path}: fact {index}")
                for index, record in enumerate(records)
            ]
            # Every record decides the columns, not only the first hundred.
            return pl.DataFrame(records, infer_schema_length=None)
    except (OSError, ValueError, RecursionError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(
            f"cannot read the facts: {exc}",
            location=SourceLocation(str(path)),
            fix="give a CSV, a JSON list, JSON lines or a Parquet file",
        ) from exc
    raise ConfigError(
        f"unknown facts file type {suffix!r}",
        location=SourceLocation(str(path)),
        fix="use .csv, .json (a list or JSON lines), .jsonl or .parquet",
    )


def _load(path: Path) -> RuleSet:
    with _reporting_rule_errors():
        return load_rules(path)


@app.command("eval")
def eval_command(
    rules: Annotated[Path, typer.Argument(help="The rule file.")],
    facts: Annotated[Path, typer.Argument(help="Facts: CSV, JSON list, JSON lines or Parquet.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the matches as JSON.")] = False,
    now: NowOption = None,
    imports: ImportOption = None,
) -> None:
    """Evaluate every fact of a table with the columnar evaluator and print the matches."""
    _import_modules(imports)
    ruleset = _load(rules)
    frame = _read_facts(facts, ruleset)
    _warn_absent(ruleset, frame.columns)
    matches = ruleset.evaluate_frame(frame, now=now)
    records = matches.to_dicts()
    if as_json:
        sys.stdout.write(_dumps(records) + "\n")
        return
    from rich.table import Table

    table = Table(title=f"{ruleset.name}: {len(records)} match(es) in {frame.height} fact(s)")
    for column in ("row", "rule", "action", "params"):
        table.add_column(column, overflow="fold")
    for record in records:
        params = {
            key: value for key, value in (record.get("params") or {}).items() if value is not None
        }
        table.add_row(
            str(record["row"]),
            escape(record["rule_id"]),
            escape(record["action"] or ""),
            escape(_dumps(params)) if params else "",
        )
    console.print(table)


def _warn_absent(ruleset: RuleSet, present: Sequence[str]) -> None:
    from reclaim.rules.facts import absent_fields

    for absent in absent_fields(ruleset, present):
        err_console.print(
            f"[yellow]warning:[/] {escape(str(absent))}", highlight=False, soft_wrap=True
        )


def _parse_fact(text: str) -> dict[str, Any]:
    from reclaim.rules.source import DEFAULT_YAML_LIMITS, load_yaml, read_rule_file, shorten

    if text.startswith("@"):
        path = Path(text[1:])
        data = load_yaml(
            read_rule_file(path, DEFAULT_YAML_LIMITS.max_bytes, what="fact file"), str(path)
        ).data
        source = str(path)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--fact is not valid JSON: {exc.msg} at column {exc.colno}",
                fix="write a JSON object such as '{\"cpu_avg\": 3}', or @file.json",
            ) from exc
        except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
            raise ConfigError(
                f"--fact cannot be read: {shorten(str(exc), 200)}",
                fix="give long numbers as strings, or shorten them",
            ) from exc
        except RecursionError as exc:
            raise ConfigError(
                "--fact nests lists or objects too deeply to read",
                fix="flatten the fact; rule conditions read fields a few levels deep at most",
            ) from exc
        source = "--fact"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the fact must be a JSON object (a mapping of fields)",
            fix="write e.g. '{\"cpu_avg\": 3}'",
        )
    return data


def _add_node(parent: Tree, node: ExplainNode) -> None:
    branch = parent.add(escape(node.line()), highlight=False)
    # A comparison's own line already shows its operands' values.
    if node.op is None:
        for child in node.children:
            _add_node(branch, child)


@app.command("explain")
def explain_command(
    rules: Annotated[Path, typer.Argument(help="The rule file.")],
    fact: Annotated[str, typer.Option("--fact", help="The fact as JSON, or @file (JSON or YAML).")],
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Explain only this rule (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    now: NowOption = None,
    imports: ImportOption = None,
) -> None:
    """Show for one fact why each rule fired or not, with actual and expected values."""
    from reclaim.rules.facts import parse_declared_datetimes

    _import_modules(imports)
    ruleset = _load(rules)
    the_fact = parse_declared_datetimes(ruleset.schema, _parse_fact(fact))
    _warn_absent(ruleset, list(the_fact))
    explanation = ruleset.explain(the_fact, now=now, rule_ids=rule)
    if as_json:
        sys.stdout.write(_dumps(explanation.to_dict()) + "\n")
        return
    from rich.tree import Tree

    root = Tree(
        f"[bold]{escape(ruleset.name)}[/] (mode {ruleset.mode}): "
        f"{len(explanation.fired)} of {len(ruleset.rules)} rule(s) fired",
        highlight=False,
    )
    styles = {"fired": "green", "not matched": "red", "shadowed": "yellow", "disabled": "dim"}
    for item in explanation.rules:
        mark = "✓" if item.fired else "✗"
        label = (
            f"[{styles[item.status]}]{mark} {escape(item.rule_id)}[/]: {item.status}"
            f"  [dim]{escape(str(item.location or ''))}[/]"
        )
        branch = root.add(label, highlight=False)
        if item.tree is not None:
            _add_node(branch, item.tree)
        for name, value in (item.params or {}).items():
            branch.add(f"[cyan]{escape(name)}[/] = {escape(_dumps(value))}", highlight=False)
    console.print(root)


@app.command("test")
def run_tests_command(
    paths: Annotated[list[Path], typer.Argument(help="Rule files, test files, or folders.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing tests.")] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write the results as JUnit XML to this file."),
    ] = None,
    sarif_path: Annotated[
        Path | None,
        typer.Option("--sarif", help="Also write failures as SARIF 2.1.0 to this file."),
    ] = None,
    imports: ImportOption = None,
) -> None:
    """Run the rule tests kept beside the rules; exit 1 if any fails."""
    from reclaim.rules.testing import run_rule_tests

    _import_modules(imports)
    report = run_rule_tests(paths)
    _write_reports(report, junit, sarif_path)
    _print_errors(report.errors)
    for result in report.results:
        if result.passed:
            if verbose:
                console.print(
                    f"[green]PASS[/] {escape(result.source)}: {escape(result.name)}",
                    highlight=False,
                )
            continue
        console.print(f"[red]FAIL[/] {escape(result.source)}: {escape(result.name)}")
        if result.error:
            console.print(f"    [red]error:[/] {escape(result.error)}", highlight=False)
        for difference in result.differences:
            for line in difference.splitlines():
                style = "red" if "- expected" in line else "green" if "+ actual" in line else ""
                console.print(f"    [{style}]{escape(line)}[/]" if style else f"    {escape(line)}")
    colour = "green" if report.passed else "red"
    console.print(f"[{colour}]{report.summary()}[/]", highlight=False)
    if report.errors:
        raise typer.Exit(code=2)
    if not report.results:
        err_console.print("no rule tests found", style="yellow")
        raise typer.Exit(code=1)
    if not report.passed:
        raise typer.Exit(code=1)


def _write_reports(report: RuleTestReport, junit: Path | None, sarif_path: Path | None) -> None:
    from reclaim.rules.reports import junit_xml, sarif

    for path, kind in ((junit, "junit"), (sarif_path, "sarif")):
        if path is None:
            continue
        text = junit_xml(report) if kind == "junit" else json.dumps(sarif(report), indent=2)
        try:
            path.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the report: {exc.strerror or exc}",
                location=SourceLocation(str(path)),
                fix="check that the folder exists and is writable",
            ) from exc


@app.command("schema")
def schema_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON Schema of rule files.")
    ] = False,
    imports: ImportOption = None,
) -> None:
    """Print the rule file format (JSON Schema with --json) and the function and action tables."""
    from reclaim.rules.schema import action_table, function_table, rule_file_schema

    _import_modules(imports)
    if as_json:
        sys.stdout.write(json.dumps(rule_file_schema(), indent=2) + "\n")
        return
    from rich.table import Table

    functions = Table(title="Expression functions")
    for column in ("function", "returns", "nulls", "example"):
        functions.add_column(column, overflow="fold")
    for entry in function_table():
        functions.add_row(
            escape(entry["signature"]),
            entry["returns"],
            escape(entry["nulls"]),
            escape(entry["example"]),
        )
    console.print(functions)
    actions = Table(title="Actions")
    for column in ("action", "parameters", "what it does"):
        actions.add_column(column, overflow="fold")
    for entry in action_table():
        params = entry["params"].get("properties", {})
        required = set(entry["params"].get("required", []))
        kinds = entry["param_kinds"]
        described = ", ".join(
            f"{name}{'*' if name in required else ''} ({kinds.get(name, 'literal')})"
            for name in params
        )
        if entry["other_params"] is not None:
            described += (", " if described else "") + f"any other ({entry['other_params']})"
        actions.add_row(escape(entry["name"]), escape(described), escape(entry["summary"]))
    console.print(actions)
    console.print(
        "* required. Print the JSON Schema of rule files with [bold]reclaim rules schema --json[/]",
        highlight=False,
    )
