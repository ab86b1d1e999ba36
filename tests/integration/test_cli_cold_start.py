"""Cold start: what ``reclaim --help`` and ``reclaim rules check`` import (issue 9, item 13).

Each case runs the CLI in a fresh interpreter and lists the heavy modules it loaded, so the
test holds whatever the machine's speed: no timings are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from reclaim.cli.app import LAZY_COMMANDS, app, load_command

HEAVY = (
    "sqlalchemy",
    "alembic",
    "polars",
    "boto3",
    "httpx",
    "reclaim.store",
    "reclaim.ingest",
    "reclaim.recommend",
    "reclaim.durable",
    "reclaim.pipeline",
)

_PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["reclaim", *json.loads(sys.argv[1])]
from reclaim.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"code": code, "loaded": [name for name in heavy if name in sys.modules]}),
      file=sys.stderr)
"""


def _loaded(*args: str, heavy: tuple[str, ...] = HEAVY) -> tuple[int, list[str]]:
    # sys.argv is rewritten by the probe; the JSON arguments travel after "-c".
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args)), json.dumps(list(heavy))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    return report["code"], report["loaded"]


def test_help_imports_no_database_table_or_cloud_library() -> None:
    code, loaded = _loaded("--help", heavy=(*HEAVY, "pydantic", "reclaim.rules"))
    assert code == 0
    assert loaded == []


def test_checking_one_rule_imports_no_database_table_or_cloud_library(tmp_path: Path) -> None:
    rules = tmp_path / "one.yaml"
    rules.write_text("rules:\n  - id: idle\n    when: cpu_avg < 10\n", encoding="utf-8")
    # Nor what only printing tables, writing test reports or evaluating a frame needs, nor
    # pydantic: Typer's converters of text and paths, and the rule file's models, are
    # replaced by plain ones for what they take (reclaim.cli.coercion, reclaim.rules.spec),
    # nor ruamel.yaml, whose constructors build only floats, timestamps and rare integers,
    # and whose parser reads only what libyaml's refuses (reclaim.rules.scalars).
    printing = (
        "rich.table",
        "rich.tree",
        "xml.etree.ElementTree",
        "reclaim.rules.reports",
        "reclaim.rules.expression.columnar",
    )
    unneeded = ("pydantic", "typer._adapters", "reclaim.rules.model", "reclaim.rules.schema")
    unneeded += ("ruamel.yaml", "re2")  # re2: the rule has no regular expression
    code, loaded = _loaded("rules", "check", str(rules), heavy=(*HEAVY, *printing, *unneeded))
    assert code == 0
    assert loaded == []


def test_checking_a_file_of_every_rule_field_and_its_tests_imports_no_pydantic(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nkind: savings\nname: idle machines\ndescription: d\nmode: first\n"
        "facts: {cpu_avg: number, name: string}\nvars: {low: 10}\n"
        "rules:\n"
        "  - name: idle\n    condition: cpu_avg < low\n    description: d\n"
        "    priority: 2\n    tags: [compute]\n    enabled: true\n"
        "  - id: named\n    when: name == 'x'\n"
        "tests:\n  - name: low\n    fact: {cpu_avg: 1}\n    fired: [idle]\n"
        "    not_fired: [named]\n    context: {}\n    now: 2026-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    (tmp_path / "rules.tests.yaml").write_text(
        "rules: rules.yaml\ntests:\n  - name: high\n    fact: {cpu_avg: 90}\n    fired: []\n",
        encoding="utf-8",
    )
    code, loaded = _loaded("rules", "check", str(tmp_path), heavy=("pydantic",))
    assert code == 0
    assert loaded == []


def test_a_file_with_errors_is_still_checked_by_the_models(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: idle\n    when: cpu_avg < 10\n    tag: [x]\n")
    code, loaded = _loaded("rules", "check", str(rules), heavy=("pydantic",))
    assert code == 2
    assert loaded == ["pydantic"]


def test_importing_the_rules_engine_does_not_import_polars() -> None:
    probe = "import sys, reclaim.rules; print('polars' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"


def test_evaluating_rules_row_by_row_does_not_import_polars() -> None:
    # The row evaluator needs no Polars; importing it was most of a small rule set's first
    # evaluation (issue 9, item 13).
    probe = (
        "import sys\n"
        "from reclaim.rules import load_rules_text\n"
        "rules = load_rules_text('rules:\\n  - id: idle\\n    when: cpu_avg < 10\\n')\n"
        "assert rules.evaluate({'cpu_avg': 1.0}).fired == ['idle']\n"
        "assert rules.evaluate_many([{'cpu_avg': None}, {}])[0].fired == []\n"
        "print('polars' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", list(LAZY_COMMANDS))
def test_the_summary_in_root_help_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    first_paragraph = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert LAZY_COMMANDS[name].summary == first_paragraph


def test_every_command_is_listed_in_order() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    ctx = typer.Context(group)
    assert group.list_commands(ctx) == list(LAZY_COMMANDS)
