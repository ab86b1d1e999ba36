"""``reclaim rules`` as a user runs it: a subprocess, real files, exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from reclaim.rules.examples import EXAMPLES_DIR

INVOICE_ACTIONS = "reclaim.rules.examples.invoice_actions"
SAVINGS = EXAMPLES_DIR / "savings.yaml"

FACTS = [
    {
        "resource_id": "i-1",
        "kind": "vm",
        "cpu_avg": 3,
        "mem_avg": 50,
        "cost_30d": 120.0,
        "age_days": 90,
    },
    {
        "resource_id": "vol-1",
        "kind": "volume",
        "attached": False,
        "age_days": 30,
        "cost_30d": 8.5,
    },
    {
        "resource_id": "i-2",
        "kind": "vm",
        "cpu_avg": None,
        "mem_avg": 50,
        "cost_30d": 120.0,
        "age_days": 90,
    },
]


def reclaim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "reclaim", "rules", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_passes_on_the_examples() -> None:
    result = reclaim("check", str(EXAMPLES_DIR), "--import", INVOICE_ACTIONS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == 4


def test_check_prints_every_error_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: savings\nmdoe: all\nrules:\n  - id: a\n    when: cpu <\n"
        "  - id: a\n    when: 'True'\n    action: recomend\n"
    )
    result = reclaim("check", str(tmp_path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines[0] == f"error: {bad}:2:1: unknown key 'mdoe'; did you mean 'mode'?"
    assert lines[1].startswith(f"error: {bad}:5:")
    assert (
        lines[2]
        == f"error: {bad}:6:9: duplicate rule id 'a' (first in rule 1); give each rule its own id"
    )
    assert (
        lines[3]
        == f"error: {bad}:8:13: rule 'a': unknown action 'recomend'; did you mean 'recommend'?"
    )
    assert "4 error(s)" in result.stderr


def test_check_without_the_host_actions_names_the_fix() -> None:
    result = reclaim("check", str(EXAMPLES_DIR / "invoices.yaml"))
    assert result.returncode == 2
    assert "unknown action 'offer_discount'" in result.stderr
    assert "--import" in result.stderr


def test_test_runs_the_examples_and_fails_with_a_diff(tmp_path: Path) -> None:
    result = reclaim("test", str(EXAMPLES_DIR), "--import", INVOICE_ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout

    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {id: a, when: x > 1, action: set, params: {y: x * 2}}\n"
    )
    (tmp_path / "r.tests.yaml").write_text(
        "tests:\n  - name: doubles\n    fact: {x: 2}\n    context: {y: 5}\n"
    )
    failed = reclaim("test", str(tmp_path))
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout
    assert "- expected 5" in failed.stdout
    assert "+ actual   4" in failed.stdout


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl", "parquet"])
def test_eval_reads_every_facts_format(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame(FACTS)
    path = tmp_path / f"facts.{suffix}"
    if suffix == "csv":
        frame.write_csv(path)
    elif suffix == "json":
        path.write_text(json.dumps(FACTS))
    elif suffix == "jsonl":
        path.write_text("\n".join(json.dumps(fact) for fact in FACTS) + "\n")
    else:
        frame.write_parquet(path)
    result = reclaim("eval", str(SAVINGS), str(path), "--json")
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)
    assert [(m["row"], m["rule_id"]) for m in matches] == [(0, "idle-vm"), (1, "unattached-volume")]
    assert matches[0]["params"]["savings"] == 84.0
    assert matches[1]["params"]["title"] == "Delete unattached volume vol-1"


def test_eval_prints_a_table(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(FACTS))
    result = reclaim("eval", str(SAVINGS), str(path))
    assert result.returncode == 0, result.stderr
    assert "2 match(es) in 3 fact(s)" in result.stdout
    assert "idle-vm" in result.stdout


def test_eval_with_a_bad_rule_file_exits_2(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - {id: a, when: x >}\n")
    facts = tmp_path / "f.json"
    facts.write_text("[]")
    result = reclaim("eval", str(rules), str(facts))
    assert result.returncode == 2
    assert f"error: {rules}:2:" in result.stderr


def test_explain_shows_actual_and_expected(tmp_path: Path) -> None:
    fact = json.dumps(FACTS[0])
    result = reclaim("explain", str(SAVINGS), "--fact", fact)
    assert result.returncode == 0, result.stderr
    assert "✓ idle-vm: fired" in result.stdout
    assert "cpu_avg < idle_cpu" in result.stdout
    assert "3 < 10 ✓" in result.stdout
    assert "✗ unattached-volume: not matched" in result.stdout
    assert "'vm' == 'volume' ✗" in result.stdout

    fact_file = tmp_path / "fact.json"
    fact_file.write_text(fact)
    one = reclaim("explain", str(SAVINGS), "--fact", f"@{fact_file}", "--rule", "idle-dev")
    assert one.returncode == 0, one.stderr
    assert "idle-dev" in one.stdout
    assert "idle-vm" not in one.stdout

    bad = reclaim("explain", str(SAVINGS), "--fact", "{nope")
    assert bad.returncode == 2
    assert "--fact is not valid JSON" in bad.stderr


def test_schema_prints_tables_and_json() -> None:
    tables = reclaim("schema")
    assert tables.returncode == 0, tables.stderr
    assert "Expression functions" in tables.stdout
    assert "days_since" in tables.stdout
    assert "recommend" in tables.stdout
    as_json = reclaim("schema", "--json")
    assert as_json.returncode == 0
    schema = json.loads(as_json.stdout)
    assert schema["title"] == "reclaim rule file"


def test_hostile_yaml_is_rejected_quickly(tmp_path: Path) -> None:
    lol = tmp_path / "lol.yaml"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    lol.write_text("\n".join(lines) + "\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("rules: " + "[" * 10_000 + "]" * 10_000 + "\n")
    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 600_000)
    result = reclaim("check", str(lol), str(deep), str(huge))
    assert result.returncode == 2
    assert "expands to more than" in result.stderr
    assert "nests deeper than 64 levels" in result.stderr
    assert "more than the 1,000,000 a rule file may be" in result.stderr


def test_check_also_checks_the_rule_tests(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - {id: a, when: x > 1}\n")
    tests = tmp_path / "r.tests.yaml"
    tests.write_text("tests:\n  - name: t\n    fact: {x: 2}\n    fird: [a]\n")
    result = reclaim("check", str(tmp_path))
    assert result.returncode == 2
    assert f"error: {tests}:4:5: test 1: unknown key 'fird'; did you mean 'fired'?" in result.stderr


def test_explain_as_json_and_late_columns_in_json_facts(tmp_path: Path) -> None:
    result = reclaim("explain", str(SAVINGS), "--fact", json.dumps(FACTS[0]), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fired"] == ["idle-vm"]
    idle = data["rules"][0]
    assert idle["status"] == "fired"
    assert idle["params"]["savings"] == 84.0
    comparison = idle["tree"]["children"][1]
    assert (comparison["op"], comparison["actual"], comparison["expected"]) == ("<", 3, 10)

    # A field that appears only after the first hundred facts is still read.
    facts = [{"resource_id": f"i-{n}", "kind": "vm"} for n in range(150)]
    facts.append({"resource_id": "vol-9", "kind": "volume", "attached": False, "age_days": 30})
    path = tmp_path / "late.json"
    path.write_text(json.dumps(facts))
    late = reclaim("eval", str(SAVINGS), str(path), "--json")
    assert late.returncode == 0, late.stderr
    assert [m["rule_id"] for m in json.loads(late.stdout)] == ["unattached-volume"]


def test_check_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: a, when: cpu <}\n  - {id: b, when: 'True', action: nope}\n")
    result = reclaim("check", str(bad), str(tmp_path / "missing.yaml"), "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["ok"] == []
    assert [(e["path"], e["line"], e["error"]) for e in data["errors"]] == [
        (str(tmp_path / "missing.yaml"), None, "ConfigError"),
        (str(bad), 2, "ExpressionError"),
        (str(bad), 3, "UnknownActionError"),
    ]
    assert data["errors"][2]["fix"].startswith("register it with @register_action")
    ok = reclaim("check", str(SAVINGS), "--json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["ok"][0]["rules"] == 5


def test_a_file_name_is_printed_as_it_is_not_as_an_emoji(tmp_path: Path) -> None:
    # Rich replaces ``:smile:`` with an emoji unless told not to; a path must come out verbatim.
    rules = tmp_path / "team:smile:.yaml"
    rules.write_text("rules:\n  - id: big\n    condition: cost > 100\n")
    result = reclaim("check", str(rules))
    assert result.returncode == 0, result.stderr
    assert "team:smile:.yaml" in result.stdout.replace("\n", "")
